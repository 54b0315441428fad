"""The SLUB helper (gdbscripts/vmcore/slab.py: vkmem) through vmcore-gdbserver and a real gdb on
the sample dumps, checked against crash's `kmem -s` on the same dump and against the scenario
ground truth."""
import re
import shutil
import subprocess
import tempfile

import pytest

from gdbscripts_common import pick, scripts

CACHE_LINE = re.compile(r"^([0-9a-f]{16})\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+[km])\s+(\S+)\s*$", re.M)


def caches_of(text):
    """{cache address: (name, objsize, allocated, total, slabs, ssize)} from kmem -s output."""
    return {m[0]: (m[6], int(m[1]), int(m[2]), int(m[3]), int(m[4]), m[5])
            for m in CACHE_LINE.findall(text)}


def crash_output(samples, dump, commands):
    if shutil.which("crash") is None:
        pytest.fail("crash is not installed (make deps installs it)")
    with tempfile.NamedTemporaryFile("w", suffix=".crash") as cmds:
        cmds.write("\n".join(list(commands) + ["quit"]) + "\n")
        cmds.flush()
        proc = subprocess.run(["crash", "-s", samples.vmlinux] + dump["files"] + ["-i", cmds.name],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace", timeout=600)
    return proc.stdout


@pytest.mark.parametrize("scenario", ["sysrq", "busy", "slab-double-free"])
def test_cache_list_matches_crash_kmem_s(samples, scenario):
    """Every cache, on 2 and 4 CPUs, including kmalloc-8 with a looping and a corrupt CPU
    freelist (slab-double-free)."""
    dump = pick(samples, scenario)
    ours = caches_of(scripts(samples, dump, ["vkmem -s"]))
    theirs = caches_of(crash_output(samples, dump, ["kmem -s"]))
    assert len(theirs) > 50, "crash listed too few caches"
    assert set(ours) == set(theirs)
    differing = {addr: (ours[addr], theirs[addr]) for addr in ours if ours[addr] != theirs[addr]}
    assert not differing, differing


def test_every_freelist_is_consistent_with_the_counters(samples):
    """Walking every freelist of every cache (hardened pointers decoded) finds exactly the free
    objects the slab counters imply, and no problem, on a kernel that crashed cleanly."""
    dump = pick(samples, "sysrq")
    out = scripts(samples, dump, [
        "python\n"
        "from vmcore import slab\n"
        "for c in slab.all_caches():\n"
        "    checks, problems, dups = slab.check_cache(c)\n"
        "    allocated, total, slabs = slab.cache_stats(c)\n"
        "    free = sum(len(w.objects) for x in checks for w in x.walks)\n"
        "    print('CHECK %s free=%d expected=%d problems=%d' % (c.name, free, total - allocated,"
        " len(problems)))\n"
        "end"])
    rows = re.findall(r"^CHECK (\S+) free=(\d+) expected=(\d+) problems=(\d+)$", out, re.M)
    assert len(rows) > 50, out[-2000:]
    assert sum(int(free) for _, free, _, _ in rows) > 0
    bad = [row for row in rows if row[1] != row[2] or row[3] != "0"]
    assert not bad, bad
    clean = scripts(samples, dump, ["vkmem -S kmalloc-8"])
    assert "no freelist problems found" in clean, clean[-2000:]


def test_address_lookup_in_tail_page_of_task_struct(samples):
    """The panicking task's task_struct is a slab object of task_struct (an order-3 cache);
    an address 4 KiB + 8 into it lies in a tail page of the compound slab page."""
    dump = pick(samples, "sysrq")
    task = int(samples.truth(dump)["panic_task"], 16)
    out = scripts(samples, dump, ["vkmem 0x%x" % task, "vkmem 0x%x" % (task + 4104)])
    objects = re.findall(r"object (0x[0-9a-f]+) index \d+, \+(\d+): (\w+)", out)
    assert objects == [("0x%x" % task, "0", "ALLOCATED"), ("0x%x" % task, "4104", "ALLOCATED")], out
    assert out.count("cache  task_struct ") == 2, out
    assert re.search(r"0x%x: page 0x[0-9a-f]+ \(tail page of compound head 0x" % (task + 4104),
                     out), out


def test_address_outside_slab_is_reported(samples):
    dump = pick(samples, "sysrq")
    out = scripts(samples, dump, ["vkmem &init_task", "vkmem -S no-such-cache"])
    assert "is not in the kernel direct map" in out, out
    assert "no slab cache named 'no-such-cache'" in out, out


def test_double_free_names_the_duplicated_objects(samples):
    """CPU 1's kmalloc-8 freelist is the cycle x -> y -> x (kfree(x), kfree(y), kfree(x)): the
    check names exactly x and y; CPU 0's freelist head was overwritten by the buggy user and
    points outside the slab."""
    dump = pick(samples, "slab-double-free")
    truth = samples.truth(dump)
    out = scripts(samples, dump, ["vkmem -S %s" % truth["slab_cache_name"]])
    assert "kmem_cache 0x%x %s:" % (int(truth["slab_cache"], 16), truth["slab_cache_name"]) in out
    match = re.search(r"^duplicate freelist objects: (.*)$", out, re.M)
    assert match, out[-3000:]
    found = {int(word, 16) for word in match.group(1).split()}
    assert found == {int(obj, 16) for obj in truth["duplicated_objects"]}, out[-3000:]
    cpu = truth["duplicate_cpu"]
    assert re.search(r"^  CPU %d slab CPU freelist \(slab 0x[0-9a-f]+\): duplicate freelist object "
                     r"0x[0-9a-f]+ .*loops through 2 object" % cpu, out, re.M), out[-3000:]
    crash_cpu = truth["crash_cpu"]
    assert re.search(r"^  CPU %d slab CPU freelist \(slab 0x[0-9a-f]+\): pointer 0x[0-9a-f]+ "
                     r"(outside the slab|not on an object boundary)" % crash_cpu, out, re.M), \
        out[-3000:]
