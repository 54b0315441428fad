"""lx-* pairing (gdbscripts/vmcore/lxpair.py): with the kernel's own scripts/gdb loaded, the
implicit-CPU helpers ($lx_current(), $lx_per_cpu()) use a task thread's own CPU, in either
loading order, through real gdb on a real sample dump served by vmcore-gdbserver."""
import re

import pytest

from gdbscripts_common import SOURCE, run_sections


# For every thread: the CPU the stub says it is on (CPU threads: their own; task threads:
# the one in their details), and what the kernel's helpers answer on it.
CHECK = """python
import re
checked = {"cpu": 0, "task": 0}
for t in sorted(gdb.selected_inferior().threads(), key=lambda t: t.num):
    name = t.name or ""
    m = re.search(r"CPU#(\\d+)", name) if name.startswith("CPU#") else re.search(r"\\bcpu=(\\d+)", t.details or "")
    if not m:
        continue
    cpu = int(m.group(1))
    t.switch()
    kind = "cpu" if name.startswith("CPU#") else "task"
    want_cur = int(gdb.parse_and_eval("*(unsigned long *)((unsigned long)&current_task + __per_cpu_offset[%d])" % cpu))
    try:
        got = int(gdb.parse_and_eval('$lx_per_cpu("cpu_number")'))
        cur = int(gdb.parse_and_eval("(unsigned long)&$lx_current()"))
    except (gdb.error, gdb.MemoryError) as err:
        print("LXPAIR-BAD thread %d %r cpu %d: %s" % (t.num, name, cpu, err))
        continue
    if got != cpu or cur != want_cur:
        print("LXPAIR-BAD thread %d %r cpu %d: cpu_number=%d current=%#x want %#x" % (t.num, name, cpu, got, cur, want_cur))
    checked[kind] += 1
print("LXPAIR-CHECKED cpu=%d task=%d" % (checked["cpu"], checked["task"]))
end"""


def checked_counts(text):
    m = re.search(r"LXPAIR-CHECKED cpu=(\d+) task=(\d+)", text)
    assert m, text[-3000:]
    return int(m.group(1)), int(m.group(2))


@pytest.mark.parametrize("order", ["ours-first", "kernel-scripts-first"])
def test_lx_helpers_use_the_task_threads_cpu(samples, lx_scripts, order):
    dump = samples.dump(scenario="sysrq", capture="kdump", format="elf")
    truth = samples.truth(dump)
    lx = f"source {lx_scripts}"
    if order == "ours-first":
        before, after = (SOURCE,), (lx,)
    else:
        # vmlinux-gdb.py needs only symbols, so it can come before `target remote`.
        before, after = (lx,), (SOURCE,)
    out = run_sections(samples, dump, [("check", [CHECK]),
                                       ("panic", [f"thread {truth['panic_cpu'] + 1}",
                                                  "p $lx_current().pid"])],
                       before=before, after_connect=after, extra_args=("--tasks=all",))
    assert "LXPAIR-BAD" not in out["check"], out["check"]
    cpus, tasks = checked_counts(out["check"])
    assert cpus == truth["nr_cpus"]
    assert tasks > 20
    assert re.search(rf"^\$\d+ = {truth['pid']}$", out["panic"], re.M), out["panic"]


def test_without_pairing_task_threads_get_the_wrong_cpu(samples, lx_scripts):
    """The failure the pairing fixes: the kernel's scripts alone take thread number - 1."""
    dump = samples.dump(scenario="sysrq", capture="kdump", format="elf")
    out = run_sections(samples, dump, [("check", [CHECK])], after_connect=(
        "symbol-file",
        "python import gdb; off = int(gdb.execute('monitor kaslr', to_string=True)"
        ".split('kaslr_offset ')[1].split()[0], 16); "
        f"gdb.execute('add-symbol-file {samples.vmlinux} -o %#x -s .data..percpu 0' % off)",
        f"source {lx_scripts}"), extra_args=("--tasks=all",))
    assert "LXPAIR-BAD" in out["check"], out["check"][-3000:]
