# sysrq: the plain `echo c > /proc/sysrq-trigger`, from a shell pinned to
# CPU 1 so that the panicking CPU is not the boot CPU. Sourced by /init.
taskset 2 sh -c 'echo c > /proc/sysrq-trigger'
