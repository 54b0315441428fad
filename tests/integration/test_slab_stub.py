"""The stub's SLUB model (memmodel/slab.c behind `monitor kmem`) against the Python path of
gdbscripts/vmcore/slab.py (`set vmcore-kmem-stub off`) and the scenario ground truth, through a
real gdb on the sample dumps; and vkmem on struct page addresses."""
import re
import shutil
import struct

import pytest

from gdbscripts_common import run_sections
from gdbtest import dump_params
from test_gdbscripts_slab import caches_of


def compared_dump(dump):
    return dump["id"].endswith("/kdump-zlib-d31") or dump["id"] == "slab-double-free-l5/qemu-elf"


def dump_by_id(samples, dump_id):
    found = [d for d in samples.dumps() if d["id"] == dump_id]
    if not found:
        pytest.skip("no dump %s in the samples" % dump_id)
    return found[0]


@pytest.mark.parametrize("manifest,dump", dump_params(compared_dump))
def test_monitor_kmem_s_equals_python_path(samples, manifest, dump):
    """Every cache's line of `monitor kmem -s` equals the Python path's (which the gdbscripts
    tests check against crash), and vkmem -s prints the stub's text unchanged."""
    out = run_sections(samples, dump, [
        ("monitor", ["monitor kmem -s"]),
        ("vkmem_stub", ["vkmem -s"]),
        ("used_stub", ["python from vmcore import slab; print('STUB', slab.stub_kmem('-s') is not None)"]),
        ("python", ["set vmcore-kmem-stub off", "vkmem -s",
                    "python from vmcore import slab; print('STUB', slab.stub_kmem('-s') is not None)"]),
    ])
    assert "STUB True" in out["used_stub"], out["used_stub"]
    assert "STUB False" in out["python"], out["python"][-500:]
    out["python"] = out["python"].replace("STUB False", "")
    stub, python = caches_of(out["monitor"]), caches_of(out["python"])
    assert len(stub) > 50, out["monitor"][-2000:]
    assert set(stub) == set(python)
    differing = {addr: (stub[addr], python[addr]) for addr in stub if stub[addr] != python[addr]}
    assert not differing, differing
    assert out["vkmem_stub"].strip() == out["monitor"].strip()
    assert out["monitor"].strip() == out["python"].strip()


def test_monitor_kmem_S_names_the_duplicated_objects(samples):
    """On slab-double-free, the stub's check of kmalloc-8 names exactly the manifest's
    duplicated objects, and prints what the Python path prints."""
    dump = dump_by_id(samples, "slab-double-free-l5/kdump-zlib-d31")
    truth = samples.truth(dump)
    name = truth["slab_cache_name"]
    out = run_sections(samples, dump, [
        ("monitor", ["monitor kmem -S %s" % name]),
        ("by_address", ["monitor kmem -S %s" % truth["slab_cache"]]),
        ("python", ["set vmcore-kmem-stub off", "vkmem -S %s" % name]),
    ])
    text = out["monitor"]
    assert "kmem_cache 0x%x %s:" % (int(truth["slab_cache"], 16), name) in text, text[-3000:]
    match = re.search(r"^duplicate freelist objects: (.*)$", text, re.M)
    assert match, text[-3000:]
    found = {int(word, 16) for word in match.group(1).split()}
    assert found == {int(obj, 16) for obj in truth["duplicated_objects"]}, text[-3000:]
    assert re.search(r"^  CPU %d slab CPU freelist \(slab 0x[0-9a-f]+\): duplicate freelist object "
                     r"0x[0-9a-f]+ .*loops through 2 object" % truth["duplicate_cpu"], text, re.M)
    assert text.strip() == out["by_address"].strip()
    assert text.strip() == out["python"].strip()


def test_kmem_errors_are_clear(samples):
    dump = dump_by_id(samples, "slab-double-free-l5/kdump-zlib-d31")
    out = run_sections(samples, dump, [
        ("unknown", ["vkmem -S no-such-cache", "monitor last-error"]),
        ("not_a_cache", ["vkmem -S 0x1234"]),
        ("list_unknown", ["vkmem -s no-such-cache"]),
        ("usage", ["monitor kmem -x", "monitor last-error"]),
        ("two_names", ["monitor kmem -S a b", "monitor last-error"]),
        ("help", ["monitor help"]),
    ])
    assert "no slab cache named 'no-such-cache'" in out["unknown"], out["unknown"]
    assert "monitor kmem -S no-such-cache: no slab cache named 'no-such-cache'" in out["unknown"]
    assert "'0x1234' is neither a cache name nor a kmem_cache on slab_caches" in out["not_a_cache"]
    assert "no slab cache named 'no-such-cache'" in out["list_unknown"], out["list_unknown"]
    assert "usage: kmem -s [NAME] | kmem -S NAME|ADDR" in out["usage"], out["usage"]
    assert "give one cache name or address" in out["two_names"], out["two_names"]
    assert "kmem -S NAME|ADDR" in out["help"], out["help"]


def test_vkmem_on_struct_page_of_compound_slab(samples):
    """The panicking task's task_struct lies in an order-3 slab: the struct page of the page
    4 KiB into it is a tail page; vkmem on that struct page names the cache, the slab (the
    head page) and the objects overlapping the page, which include the task."""
    dump = dump_by_id(samples, "sysrq-l4/kdump-zlib-d31")
    task = int(samples.truth(dump)["panic_task"], 16)
    addr = task + 4104
    first = run_sections(samples, dump, [("object", ["vkmem 0x%x" % addr])])["object"]
    match = re.search(r"0x%x: page (0x[0-9a-f]+) \(tail page of compound head (0x[0-9a-f]+)\)"
                      % addr, first)
    assert match, first
    page, head = int(match.group(1), 16), int(match.group(2), 16)
    out = run_sections(samples, dump, [
        ("tail", ["vkmem 0x%x" % page]),
        ("inside", ["vkmem 0x%x" % (page + 8)]),
        ("head", ["vkmem 0x%x" % head]),
        ("function", ["p $slab_cache(0x%x) == $slab_cache(0x%x)" % (page, task)]),
    ])
    tail = out["tail"]
    assert re.search(r"^0x%x: struct page 0x%x of pfn 0x[0-9a-f]+ \(memory 0x[0-9a-f]+-0x[0-9a-f]+\), "
                     r"tail page [1-7] of compound head 0x%x$" % (page, page, head), tail, re.M), tail
    assert "  cache  task_struct " in tail, tail
    assert re.search(r"^  slab   0x%x " % head, tail, re.M), tail
    objects = re.search(r"objects (\d+)-(\d+) of the slab \((0x[0-9a-f]+)-(0x[0-9a-f]+)\) overlap", tail)
    assert objects, tail
    assert int(objects.group(3), 16) <= task < int(objects.group(4), 16), tail
    assert "struct page 0x%x of pfn" % page in out["inside"], out["inside"]
    assert "tail page" not in out["head"] and "  cache  task_struct " in out["head"], out["head"]
    assert "= 1" in out["function"], out["function"]


def elf_file_offsets(path, pa):
    """File offsets holding physical address pa in an ELF dump: every PT_LOAD that covers it
    (the kernel image's segment and the direct map's both do)."""
    with open(path, "rb") as f:
        header = f.read(64)
        phoff, = struct.unpack_from("<Q", header, 32)
        phentsize, phnum = struct.unpack_from("<HH", header, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    offsets = []
    for i in range(phnum):
        p_type, _, p_offset, _, p_paddr, p_filesz = struct.unpack_from("<IIQQQQ", table, i * phentsize)
        if p_type == 1 and p_paddr <= pa < p_paddr + p_filesz:
            offsets.append(p_offset + pa - p_paddr)
    assert offsets, "PA 0x%x is not in %s" % (pa, path)
    return offsets


def physical(text):
    match = re.search(r"-> PA (0x[0-9a-f]+)", text)
    assert match, text
    return int(match.group(1), 16)


@pytest.mark.parametrize("damage", ["loop", "wild"])
def test_corrupt_cache_list_gives_a_clear_error(samples, tmp_path, damage):
    """A copy of an ELF dump with slab_caches damaged: the first cache's list pointing at
    itself (a loop), or slab_caches.next pointing nowhere. monitor kmem and vkmem (both paths)
    end in an error naming the address, and the server keeps answering."""
    dump = dump_by_id(samples, "slab-double-free-l5/elf-d31")
    probe = run_sections(samples, dump, [
        ("head", ["python print('HEAD 0x%x 0x%x' % (int(gdb.parse_and_eval('(unsigned long)&slab_caches')),"
                  " int(gdb.parse_and_eval('(unsigned long)slab_caches.next'))))"]),
    ])
    head, first = (int(x, 16) for x in re.search(r"HEAD (0x[0-9a-f]+) (0x[0-9a-f]+)", probe["head"]).groups())
    target_va, value = (first, first) if damage == "loop" else (head, 0x4141414141414141)
    vtop = run_sections(samples, dump, [("vtop", ["monitor vtop 0x%x" % target_va])])["vtop"]
    copy = tmp_path / "damaged.dump"
    shutil.copyfile(dump["files"][0], copy)
    with open(copy, "r+b") as f:
        for offset in elf_file_offsets(copy, physical(vtop)):
            f.seek(offset)
            f.write(struct.pack("<Q", value))
    damaged = dict(dump, files=[str(copy)])
    out = run_sections(samples, damaged, [
        ("monitor", ["monitor kmem -s", "monitor last-error"]),
        ("vkmem", ["vkmem -S kmalloc-8"]),
        ("python", ["set vmcore-kmem-stub off", "vkmem -s"]),
        ("alive", ["monitor kaslr"]),
    ])
    if damage == "loop":
        for section in ("monitor", "vkmem", "python"):
            assert "slab_caches list loops at kmem_cache 0x" in out[section], out[section]
    else:
        assert "struct kmem_cache 0x41414141414" in out["monitor"], out["monitor"]
        assert "struct kmem_cache 0x41414141414" in out["vkmem"], out["vkmem"]
        assert "0x41414141414" in out["python"], out["python"]
    assert "kaslr_offset 0x" in out["alive"], out["alive"]
