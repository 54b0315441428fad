# null-page: insmod on CPU 1 runs a release path that calls
# __free_pages(NULL, 0); the page fault oops panics (oops=panic). Sourced by /init.
taskset 2 insmod /scenarios/vmgs_nullpage.ko
