# gdbscripts: the gdb Python helpers (source gdbscripts/vmcore_gdb.py in gdb).
# Nothing to build; `all` byte-compiles them to catch syntax errors early, and
# `install` copies them to $(PREFIX)/share/vmcore-gdbserver/gdbscripts.
GDBSCRIPTS_SRCS := gdbscripts/vmcore_gdb.py $(wildcard gdbscripts/vmcore/*.py)
GDBSCRIPTS_DIR := $(DESTDIR)$(PREFIX)/share/vmcore-gdbserver/gdbscripts

.PHONY: install-gdbscripts
all: $(BUILD)/gdbscripts.stamp
install: install-gdbscripts

$(BUILD)/gdbscripts.stamp: $(GDBSCRIPTS_SRCS)
	@mkdir -p $(@D)
	$(PYTHON) -c 'import py_compile, sys; [py_compile.compile(f, cfile="$(BUILD)/pyc/" + f + "c", doraise=True) for f in sys.argv[1:]]' $^
	@touch $@

install-gdbscripts: $(GDBSCRIPTS_SRCS)
	install -d $(GDBSCRIPTS_DIR)/vmcore
	install -m 644 gdbscripts/vmcore_gdb.py $(GDBSCRIPTS_DIR)/
	install -m 644 $(wildcard gdbscripts/vmcore/*.py) $(GDBSCRIPTS_DIR)/vmcore/
