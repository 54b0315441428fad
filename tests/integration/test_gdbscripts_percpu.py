"""The per-CPU helper (gdbscripts/vmcore/percpu.py: vpercpu, $per_cpu_ptr) through
vmcore-gdbserver and a real gdb on the sample dumps, checked against the scenario ground truth
(each CPU's current task and __per_cpu_offset, printed by the truth module before the crash)."""
import re

from gdbscripts_common import pick, scripts

CPU_LINE = re.compile(r"^CPU (\d+) \((0x[0-9a-f]+)\): (.*)$", re.M)


def sections(out, marker):
    """Output split at each line starting with marker (one part per command)."""
    return re.split(r"^(?=%s)" % re.escape(marker), out, flags=re.M)[1:]


def test_static_pointer_on_every_cpu_matches_truth(samples):
    dump = pick(samples, "sysrq")
    truth = samples.truth(dump)
    out = scripts(samples, dump, ["vpercpu current_task", "print &current_task"])
    offset = int(re.search(r"current_task: static per-CPU .* offset (0x[0-9a-f]+)", out).group(1), 16)
    rows = {int(cpu): (int(addr, 16), value) for cpu, addr, value in CPU_LINE.findall(out)}
    expected = {c["cpu"]: c for c in truth["cpu_current"]}
    assert set(rows) == set(expected), out
    for cpu, item in expected.items():
        addr, value = rows[cpu]
        assert addr == int(item["per_cpu_offset"], 16) + offset, (cpu, out)
        assert int(value.split()[0], 16) == int(item["task_struct"], 16), (cpu, out)
    assert "sum over" not in out, "a pointer is not summed"


def test_numbers_are_summed_and_one_cpu_can_be_chosen(samples):
    """cpu_number holds each CPU's own number, so the sum is known: 0 + 1 + ... + (n-1)."""
    dump = pick(samples, "sysrq")
    ncpu = samples.truth(dump)["nr_cpus"]
    out = scripts(samples, dump, ["vpercpu cpu_number", "vpercpu cpu_number %d" % (ncpu - 1),
                                  "print *$per_cpu_ptr(&cpu_number, %d)" % (ncpu - 1)])
    every, single = sections(out, "cpu_number: static per-CPU")
    rows = CPU_LINE.findall(every)
    assert [(int(cpu), int(value)) for cpu, _, value in rows] == [(i, i) for i in range(ncpu)]
    assert re.search(r"^  cpu_number = %d \(0x" % sum(range(ncpu)), every, re.M), every
    assert [(int(c), int(v)) for c, _, v in CPU_LINE.findall(single)] == [(ncpu - 1, ncpu - 1)]
    assert re.search(r"^\$1 = %d$" % (ncpu - 1), out, re.M), out


def test_dynamic_percpu_pointer(samples):
    """kmalloc-8's cpu_slab is an alloc_percpu() pointer: each CPU's kmem_cache_cpu is shown
    and its non-empty freelist points into a kmalloc-8 slab (checked by the slab helper)."""
    dump = pick(samples, "sysrq")
    out = scripts(samples, dump, [
        "python from vmcore import slab; gdb.set_convenience_variable("
        "'k8', slab.find_cache('kmalloc-8').addr)",
        "vpercpu ((struct kmem_cache *)$k8)->cpu_slab"])
    assert "dynamic per-CPU struct kmem_cache_cpu" in out, out
    freelists = re.findall(r"freelist = (0x[0-9a-f]+)", out)
    assert len(freelists) == samples.truth(dump)["nr_cpus"], out
    assert re.search(r"^  tid = \d+", out, re.M), "numeric fields are summed"
    lookups = scripts(samples, dump, ["vkmem %s" % f for f in freelists if int(f, 16)])
    assert lookups.count("cache  kmalloc-8 ") == len([f for f in freelists if int(f, 16)]), lookups


def test_scenario_percpu_counters_and_sum(samples):
    """The question crash could not answer: the module's alloc_percpu() statistics
    (a struct __percpu * in the module) on every CPU, and their sums."""
    dump = pick(samples, "slab-double-free")
    truth = samples.truth(dump)
    symbol = truth["percpu_stats_symbol"]
    values = {item["cpu"]: item for item in truth["percpu_stats_values"]}
    out = scripts(samples, dump, ["vpercpu %s" % symbol, "print %s" % symbol])
    assert re.search(r"^%s: dynamic per-CPU struct \S+, offset (0x[0-9a-f]+)" % symbol, out, re.M), out
    assert re.search(r"= \(struct \S+ \*\) %s\b" % truth["percpu_stats"], out), out
    blocks = re.split(r"^(?=CPU \d+ \(0x)", out, flags=re.M)[1:]
    rows = {}
    for block in blocks:
        cpu, addr = re.match(r"CPU (\d+) \((0x[0-9a-f]+)\)", block).groups()
        rows[int(cpu)] = (int(addr, 16), dict((k, int(v)) for k, v in
                                               re.findall(r"(\w+) = (\d+)", block.split("sum over")[0])))
    assert set(rows) == set(values), out
    fields = ("allocs", "frees", "double_frees")
    for cpu, item in values.items():
        addr, shown = rows[cpu]
        assert addr == int(item["address"], 16), (cpu, out)
        assert {f: shown[f] for f in fields} == {f: item[f] for f in fields}, (cpu, out)
    for field in fields:
        total = sum(item[field] for item in values.values())
        assert re.search(r"^  %s = %d \(0x" % (field, total), out, re.M), (field, total, out)
