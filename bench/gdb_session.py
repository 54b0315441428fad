"""Timing marks for one gdb session of bench/run.

bench/run starts `gdb -nx -batch -x bench/gdb_session.py [vmlinux] -ex CMD -ex "python
bench_mark('label')" -ex CMD ...`, so each command runs exactly as a user would type it (gdb
runs its pending events between commands, which vmcore_gdb.py's automatic setup relies on).

bench_mark(label) prints `BENCHMARK <label> <epoch seconds> <gdb VmHWM kB> <stub VmHWM kB>`;
bench/run turns consecutive marks into durations and splits the output between them. VmHWM is
the peak RSS so far, so a step's figure is the peak up to the end of that step.
"""

import os
import time


def _vm_hwm(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def _stub_pids():
    """Processes below gdb named like the stub (gdb runs `target remote |` through sh)."""
    found, todo = [], [os.getpid()]
    while todo:
        parent = todo.pop()
        try:
            with open("/proc/%d/task/%d/children" % (parent, parent)) as f:
                children = [int(x) for x in f.read().split()]
        except OSError:
            continue
        for child in children:
            try:
                with open("/proc/%d/comm" % child) as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if comm.startswith("vmcore-gdbserv"):
                found.append(child)
            todo.append(child)
    return found


def bench_mark(label):
    stub = max([_vm_hwm(pid) for pid in _stub_pids()] or [-1])
    print("\nBENCHMARK %s %.6f %d %d" % (label, time.time(), _vm_hwm(os.getpid()), stub), flush=True)


bench_mark("gdb_started")
