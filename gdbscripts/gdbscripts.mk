# gdbscripts: rules added by the gdbscripts work.
