"""One timed drgn session for bench/run, run with Debian's /usr/bin/python3:

  drgn_session.py DUMP VMLINUX STEP[,STEP...] [CACHE]

Steps: ready (open the dump, load vmlinux debug info, read init_task.comm), bt (the crashed
thread's stack trace), tasks (every task's stack trace, as text), slab_list (every cache's
name, object size, SLUB node counters and slab size), slab_usage (slab_list plus crash kmem -s's
ALLOCATED: free objects of node partial, CPU and CPU partial slabs, with every CPU freelist walked),
slab_check (every allocated object of CACHE, which walks every slab and freelist of that cache).
After each step it prints `BENCHMARK <step> <epoch seconds> <VmHWM kB> -1 <output lines>`.
Output of the steps goes to stderr, except slab_usage's, which bench/run reads from stdout.
"""

import sys
import time


def vm_hwm():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def mark(step, lines):
    print("BENCHMARK %s %.6f %d -1 %d" % (step, time.time(), vm_hwm(), lines), flush=True)


def write(lines):
    sys.stderr.write("\n".join(lines) + "\n")
    return len(lines)


def swab64(x):
    return int.from_bytes(x.to_bytes(8, "little"), "big")


def free_objects(prog, cache, nr_nodes, for_each_online_cpu, per_cpu_ptr, list_for_each_entry):
    """Free objects the way crash's kmem -s counts them (mm/slub.c, Linux 6.1)."""
    free = 0
    for n in range(nr_nodes):
        node = cache.node[n]
        if node:
            for slab in list_for_each_entry("struct slab", node.partial.address_of_(), "slab_list"):
                free += slab.objects.value_() - slab.inuse.value_()
    random = cache.random.value_() if hasattr(cache, "random") else 0
    offset = cache.offset.value_()
    for cpu in for_each_online_cpu(prog):
        c = per_cpu_ptr(cache.cpu_slab, cpu)
        slab = c.slab
        if slab:
            free += slab.objects.value_() - slab.inuse.value_()
            limit = slab.objects.value_()
            ptr, seen = c.freelist.value_(), set()
            while ptr and ptr not in seen and len(seen) <= limit:
                seen.add(ptr)
                slot = ptr + offset
                ptr = prog.read_u64(slot) ^ (random ^ swab64(slot) if random else 0)
            free += len(seen)
        partial, seen = c.partial, set()
        while partial and partial.value_() not in seen:
            seen.add(partial.value_())
            free += partial.objects.value_() - partial.inuse.value_()
            partial = partial.next
    return free


def main():
    dump, vmlinux, steps = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    cache_name = sys.argv[4] if len(sys.argv) > 4 else None

    import drgn
    from drgn.helpers.linux.cpumask import for_each_online_cpu
    from drgn.helpers.linux.list import list_for_each_entry
    from drgn.helpers.linux.percpu import per_cpu_ptr
    from drgn.helpers.linux.pid import for_each_task
    from drgn.helpers.linux.slab import (find_slab_cache, for_each_slab_cache,
                                         slab_cache_for_each_allocated_object)

    prog = drgn.Program()
    prog.set_core_dump(dump)
    prog.load_debug_info([vmlinux])
    comm = prog["init_task"].comm.string_().decode()
    mark("ready", write(["init_task.comm = " + comm]))

    for step in steps:
        if step == "ready":
            continue
        if step == "bt":
            lines = str(prog.crashed_thread().stack_trace()).splitlines()
        elif step == "tasks":
            lines, count = [], 0
            for task in for_each_task(prog):
                count += 1
                lines.append("PID %d %s" % (task.pid.value_(), task.comm.string_().decode()))
                try:
                    lines.extend(str(prog.stack_trace(task)).splitlines())
                except (drgn.FaultError, ValueError) as e:
                    lines.append("  no stack trace: %s" % e)
            print("drgn tasks: %d" % count)
        elif step in ("slab_list", "slab_usage"):
            lines = []
            nr_nodes = prog["nr_node_ids"].value_()
            for cache in for_each_slab_cache(prog):
                slabs = objects = 0
                for n in range(nr_nodes):
                    node = cache.node[n]
                    if node:
                        slabs += node.nr_slabs.counter.value_()
                        objects += node.total_objects.counter.value_()
                slab_bytes = prog["PAGE_SIZE"].value_() if "PAGE_SIZE" in prog else 4096
                slab_bytes <<= cache.oo.x.value_() >> 16
                columns = [cache.value_(), cache.object_size.value_()]
                if step == "slab_usage":
                    columns.append(objects - free_objects(prog, cache, nr_nodes, for_each_online_cpu,
                                                          per_cpu_ptr, list_for_each_entry))
                lines.append(" ".join(["%x" % columns[0]] + ["%d" % v for v in columns[1:]] +
                                      ["%d" % objects, "%d" % slabs, "%d" % slab_bytes,
                                       cache.name.string_().decode()]))
        elif step == "slab_check":
            cache = find_slab_cache(prog, cache_name)
            if cache is None:
                raise SystemExit("drgn_session: no slab cache named %r" % cache_name)
            count = sum(1 for _ in slab_cache_for_each_allocated_object(cache, "void"))
            lines = ["%s: %d allocated objects" % (cache_name, count)]
        else:
            raise SystemExit("drgn_session: unknown step %r" % step)
        if step == "slab_usage":
            print("\n".join(lines))  # bench/run compares these figures with vkmem -s
        mark(step, write(lines))


main()
