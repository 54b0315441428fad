"""Address translation cross-check: a few thousand kernel addresses of every kind, ours vs crash's vtop."""
import re

import pytest

from gdbtest import dump_params
from kernel_samples import probe, probe_json, run_crash

PAGE = 4096


def spread(start, end, count, odd=0x123):
    """count addresses spread over [start, end), each at an odd offset inside its page."""
    if end <= start:
        return []
    step = max(PAGE, (end - start) // count // PAGE * PAGE)
    return [a + odd for a in range(start & ~(PAGE - 1), end - PAGE, step)][:count]


def symbols(dump, vmlinux, names):
    out = {}
    for line in probe(dump, vmlinux, "sym", *names).stdout.splitlines():
        name, addr = line.split()
        out[name] = int(addr, 16)
    return out


def crash_modules(dump, vmlinux):
    mods = []
    for line in run_crash(dump, vmlinux, ["mod"]).splitlines():
        m = re.match(r"([0-9a-f]{16})\s+(\S+)\s+([0-9a-f]{16})\s+(\d+)\s", line)
        if m:
            mods.append((m.group(2), int(m.group(3), 16), int(m.group(4))))
    return mods


def address_set(manifest, dump):
    """{kind: [addresses]} over text, rodata, data/bss, direct map, stacks, vmemmap, per-CPU areas, modules."""
    vml = manifest["vmlinux"]
    info = probe_json(dump, vml)
    s = symbols(dump, vml, ["_stext", "_etext", "__start_rodata", "__end_rodata", "_sdata", "__bss_stop"])
    mem = info["memory_bytes"]
    page_offset = int(info["page_offset"], 16)
    vmemmap = int(info["vmemmap_base"], 16)
    kinds = {
        "text": spread(s["_stext"], s["_etext"], 600),
        "rodata": spread(s["__start_rodata"], s["__end_rodata"], 300),
        "data": spread(s["_sdata"], s["__bss_stop"], 300, odd=0x8),
        "direct map": [page_offset + a for a in spread(0x100000, mem, 1000)],
        "vmemmap": [vmemmap + pfn * 64 for pfn in range(0x100, mem // PAGE, max(1, mem // PAGE // 400))],
    }
    stacks = []
    for line in probe(dump, vml, "tasks").stdout.splitlines():
        stack = int(line.split()[7], 16)
        if stack:  # exited tasks have freed their stack
            stacks += [stack + off + 0x10 for off in range(0, 4 * PAGE, PAGE)]
    kinds["task stacks (vmalloc)"] = stacks
    percpu = []
    for line in probe(dump, vml, "cpus").stdout.splitlines():
        base = int(re.search(r"per_cpu=([0-9a-f]+)", line).group(1), 16)
        percpu += [base + off for off in range(0, 64 * PAGE, PAGE)]
    kinds["per-cpu"] = percpu
    kinds["modules"] = [base + off + 0x10 for _, base, size in crash_modules(dump, vml)
                        for off in range(0, size, PAGE)]
    return kinds


def crash_vtop(dump, vmlinux, addrs):
    out = run_crash(dump, vmlinux, ["vtop %x" % a for a in addrs])
    result = {}
    blocks = out.split("VIRTUAL           PHYSICAL")[1:]
    for block in blocks:
        first = block.strip().splitlines()[0]
        fields = first.split()
        va = int(fields[0], 16)
        # crash prints a linear address for kernel text first, then walks: a non-present PTE
        # (freed init memory) shows up only as "cannot determine swap location".
        unmapped = "not mapped" in first or "cannot determine swap location" in block
        result[va] = None if unmapped else int(fields[1], 16)
    return result


def our_vtop(dump, vmlinux, addrs):
    res = probe(dump, vmlinux, "vtop", stdin="".join("%x\n" % a for a in addrs))
    result = {}
    for line in res.stdout.splitlines():
        va, rest = line.split(" ", 1)
        result[int(va, 16)] = None if rest.startswith("error:") else int(rest, 16)
        if rest.startswith("error:"):
            assert "not mapped" in rest, line
    return result


# One dump per capture path and paging mode: translation does not depend on the file format.
def _representative(d):
    return d["format"] == "elf" and d["compression"] == "none" and d.get("dump_level") is None


@pytest.mark.parametrize("manifest,dump", dump_params(_representative))
def test_vtop_matches_crash(manifest, dump):
    kinds = address_set(manifest, dump)
    addrs = sorted({a for v in kinds.values() for a in v})
    assert len(addrs) > 2000
    theirs = crash_vtop(dump, manifest["vmlinux"], addrs)
    ours = our_vtop(dump, manifest["vmlinux"], addrs)
    assert len(theirs) == len(addrs), "crash answered %d of %d" % (len(theirs), len(addrs))
    bad = []
    for kind, vas in kinds.items():
        mapped = 0
        for va in vas:
            if ours[va] != theirs[va]:
                bad.append("%s 0x%x: ours %s crash %s" % (kind, va, ours[va] and hex(ours[va]),
                                                             theirs[va] and hex(theirs[va])))
            mapped += ours[va] is not None
        assert mapped > 0, "no %s address mapped" % kind
    assert not bad, "%d mismatches, first: %s" % (len(bad), bad[:10])
