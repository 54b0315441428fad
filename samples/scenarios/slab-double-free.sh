# slab-double-free: kmalloc-8 freelist duplicates on CPUs 1 and 0, then a
# kmalloc on CPU 0 dereferences the garbage free pointer. Sourced by /init.
taskset 1 insmod /scenarios/vmgs_slab.ko
