"""Tasks of the kernel layer: the list against the scenario's truth, saved registers against drgn,
user-space reads through a task's own page tables."""
import re
import subprocess

import pytest

from gdbtest import dump_params
from kernel_samples import probe, truth

TASK_LINE = re.compile(r"(-?\d+) (-?\d+) (\S) (-?\d+) (-?\d+) (\d) ([0-9a-f]+) ([0-9a-f]+) ([0-9a-f]+) (.*?) \|(.*)$")


def our_tasks(manifest, dump):
    tasks = []
    for line in probe(dump, manifest["vmlinux"], "tasks").stdout.splitlines():
        m = TASK_LINE.match(line)
        assert m, line
        regs = dict(kv.split("=") for kv in m.group(11).split() if "error" not in m.group(11))
        tasks.append({
            "pid": int(m.group(1)), "tgid": int(m.group(2)), "state": m.group(3), "cpu": int(m.group(4)),
            "running_on": int(m.group(5)), "kthread": int(m.group(6)), "addr": int(m.group(7), 16),
            "stack": int(m.group(8), 16), "pgd_pa": int(m.group(9), 16), "comm": m.group(10), "regs": regs,
            "line": line,
        })
    return tasks


# busy is the scenario whose module prints every task of the live kernel.
@pytest.mark.parametrize("manifest,dump", dump_params(lambda d: d["scenario"] == "busy"))
def test_tasks_match_truth(manifest, dump):
    t = truth(manifest, dump)
    assert "tasks" in t, "the busy scenario's truth has no task list"
    ours = our_tasks(manifest, dump)
    # Idle tasks (pid 0) are not on the task list the scenario module printed: one per CPU.
    idle = [x for x in ours if x["pid"] == 0]
    assert sorted(x["cpu"] for x in idle) == list(range(t["nr_cpus"]))
    by_addr = {x["addr"]: x for x in ours if x["pid"] != 0}
    want = {int(x["task_struct"], 16): x for x in t["tasks"]}
    assert set(by_addr) == set(want)
    for addr, w in want.items():
        o = by_addr[addr]
        assert (o["pid"], o["tgid"], o["comm"], o["state"], o["cpu"], o["kthread"]) == \
            (w["pid"], w["tgid"], w["comm"], w["state"], w["cpu"], w["kthread"]), o["line"]
        assert (o["running_on"] >= 0) == bool(w["on_cpu"]), o["line"]
        assert (o["pgd_pa"] == 0) == bool(w["kthread"] or w["state"] == "Z"), o["line"]
    # Stable order: the same list twice, sorted by pid.
    again = [x["addr"] for x in our_tasks(manifest, dump)]
    assert again == [x["addr"] for x in ours]
    assert [x["pid"] for x in ours] == sorted(x["pid"] for x in ours)


DRGN_FRAMES = r"""
import sys
from drgn.helpers.linux.pid import for_each_task
for t in for_each_task(prog):
    try:
        f = prog.stack_trace(t)[0]
        print("%x %x %x %x" % (t.value_(), f.pc, f.register("rsp"), f.register("rbp")))
    except Exception as e:
        print("%x error %s" % (t.value_(), e))
"""


@pytest.mark.parametrize("manifest,dump",
                         dump_params(lambda d: d["capture"] == "kdump" and d["format"] == "elf"))
def test_task_regs_match_drgn(manifest, dump, tmp_path):
    """Sleeping tasks: rip/rsp/rbp from inactive_task_frame equal drgn's first frame."""
    script = tmp_path / "frames.py"
    script.write_text(DRGN_FRAMES)
    res = subprocess.run(["drgn", "-q", "-c", dump["files"][0], "-s", manifest["vmlinux"], str(script)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    theirs = {}
    for line in res.stdout.splitlines():
        f = line.split()
        if f[1] != "error":
            theirs[int(f[0], 16)] = (int(f[1], 16), int(f[2], 16), int(f[3], 16))
    checked = 0
    for o in our_tasks(manifest, dump):
        if o["running_on"] >= 0 or o["addr"] not in theirs or o["stack"] == 0:
            continue
        regs = o["regs"]
        assert (int(regs["rip"], 16), int(regs["rsp"], 16), int(regs["rbp"], 16)) == theirs[o["addr"]], o["line"]
        assert regs["cr3"] == "x"  # unknown for a sleeping task, never invented
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize("manifest,dump", dump_params(lambda d: d["scenario"] == "busy"))
def test_exited_task_without_stack_has_no_registers(manifest, dump):
    """An exited task gives its stack back at its last switch (task->stack = NULL): its
    thread.sp points into freed memory, so it has no registers rather than stale ones."""
    tasks = our_tasks(manifest, dump)
    stackless = [o for o in tasks if o["stack"] == 0 and o["running_on"] < 0]
    if not stackless:
        pytest.skip("every task of this dump still has its stack")
    for o in stackless:
        assert o["state"] in "ZX", o["line"]
        assert "regs error: task %d has no kernel stack (it has exited)" % o["pid"] in o["line"], o["line"]
    assert any(o["regs"] for o in tasks if o["stack"])


@pytest.mark.parametrize("manifest,dump", dump_params())
def test_running_tasks_have_cpu_regs(manifest, dump):
    """A task current on a CPU at the crash takes that CPU's registers, gs_base = that CPU's per-CPU base."""
    cpus = {}
    for line in probe(dump, manifest["vmlinux"], "cpus").stdout.splitlines():
        m = re.match(r"(\d+) .*per_cpu=([0-9a-f]+) current=([0-9a-f]+) \|(.*)", line)
        cpus[int(m.group(1))] = (int(m.group(2), 16), int(m.group(3), 16), m.group(4).strip())
    running = [o for o in our_tasks(manifest, dump) if o["running_on"] >= 0]
    assert len(running) == len(cpus)
    for o in running:
        per_cpu, current, regs = cpus[o["running_on"]]
        assert current == o["addr"]
        assert o["line"].split("|")[1].strip() == regs
        assert int(o["regs"]["gs_base"], 16) == per_cpu


def _drgn_dump(manifest, dump):
    """The kdump ELF (no dump level) of the same run: drgn reads only that one reliably."""
    return next((d for d in manifest["dumps"] if d["run"] == dump["run"] and d["capture"] == "kdump"
                 and d["format"] == "elf" and d.get("dump_level") is None), None)


@pytest.mark.parametrize("manifest,dump", dump_params(lambda d: d["format"] == "elf" and d.get("dump_level") is None))
def test_user_read_through_task_pgd(manifest, dump, tmp_path):
    """The panicking shell's command line, read at its user address through its own mm->pgd."""
    t = truth(manifest, dump)
    drgn_dump = _drgn_dump(manifest, dump)
    if drgn_dump is None:
        pytest.skip("no kdump ELF of this run for drgn")
    script = tmp_path / "args.py"
    script.write_text("from drgn.helpers.linux.pid import find_task\nt = find_task(prog, %d)\n"
                      "print('%%x %%x' %% (t.mm.arg_start, t.mm.arg_end))\n" % t["pid"])
    out = subprocess.run(["drgn", "-q", "-c", drgn_dump["files"][0], "-s", manifest["vmlinux"], str(script)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    start, end = (int(x, 16) for x in out.stdout.split())
    data = bytes.fromhex(probe(dump, manifest["vmlinux"], "uread", str(t["pid"]), "%x" % start,
                               str(end - start)).stdout.strip())
    assert data.split(b"\0")[0].decode().endswith(t["comm"])
    # A kernel thread has no user address space: the error says so.
    kthread = next(o for o in our_tasks(manifest, dump) if o["kthread"] and o["pid"] > 0)
    res = probe(dump, manifest["vmlinux"], "uread", str(kthread["pid"]), "%x" % start, "8", check=False)
    assert res.returncode != 0 and "kernel thread" in res.stderr
    # Dump level 31 leaves out the user pages makedumpfile recognises: the same read then names the
    # address and says why; a page it kept reads the same bytes.
    for d31 in (d for d in manifest["dumps"] if d["run"] == dump["run"] and d.get("dump_level") == 31):
        res = probe(d31, manifest["vmlinux"], "uread", str(t["pid"]), "%x" % start, str(end - start), check=False)
        if res.returncode == 0:
            assert bytes.fromhex(res.stdout.strip()) == data, d31["id"]
        else:
            assert res.stderr.startswith("kernel_probe: 0x%016x: " % start) and "excluded" in res.stderr, \
                res.stderr


@pytest.mark.parametrize("manifest,dump", dump_params())
def test_not_mapped_error_names_level(manifest, dump):
    """An address in the hypervisor guard hole at the start of the kernel half (never mapped): the error
    names the level, the entry and where it is."""
    guard = {"l4": "ffff800000000000", "l5": "ff00000000000000"}[dump["paging"]]
    res = probe(dump, manifest["vmlinux"], "read", guard, "16", check=False)
    assert res.returncode != 0
    assert re.match(r"kernel_probe: 0x[0-9a-f]{16}: not mapped: (PGD|P4D|PUD|PMD|PTE) entry 0x[0-9a-f]+ "
                    r"at 0x[0-9a-f]+ not present$", res.stderr.strip()), res.stderr
