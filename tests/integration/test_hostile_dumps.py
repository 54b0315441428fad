"""Damaged dumps: each case is made from a real sample by a script (nothing is committed), and
each must give its own clear error, or open and keep serving what is intact.

The server under test is the sanitizer build when it exists, so a memory error fails the case
even when the output looks right. Every run has a timeout: a hang fails too.
"""
import hashlib
import os
import re
import struct
import subprocess

import pytest

import gdbtest

CASE_TIMEOUT = 60


def hostile_binary():
    """The sanitizer build, unless the tests already run the server under a checker (valgrind)."""
    san = os.path.join(gdbtest.BUILD, "san", "vmcore-gdbserver")
    if os.access(san, os.X_OK) and not os.environ.get("VMCORE_GDBSERVER_WRAP"):
        return san
    return gdbtest.server_binary()


def run_info(path, vmlinux):
    argv = gdbtest.server_args([path], "info", vmlinux=vmlinux)
    argv[argv.index(gdbtest.server_binary())] = hostile_binary()
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           errors="replace", timeout=CASE_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hang: {' '.join(argv)} ran past {CASE_TIMEOUT} s")
    out = p.stdout + p.stderr
    assert p.returncode >= 0, f"killed by signal {-p.returncode}: {out}"
    assert "Sanitizer" not in out and "runtime error" not in out, out
    return p.returncode, out


@pytest.fixture(scope="module")
def kdump(samples):
    """The smallest kdump-compressed sample and its parsed layout."""
    dump = samples.dump(scenario="sysrq", paging="l5", format="kdump", compression="zlib", dump_level=31)
    path = dump["files"][0]
    with open(path, "rb") as f:
        data = f.read()
    block = struct.unpack_from("<i", data, 428)[0]
    sub_blocks, bitmap_blocks = struct.unpack_from("<iI", data, 432)
    max_mapnr = struct.unpack_from("<Q", data, block + 96)[0]
    bitmap_off = block * (1 + sub_blocks)
    desc_off = bitmap_off + bitmap_blocks * block
    return {"dump": dump, "data": data, "path": path, "block": block, "bitmap_off": bitmap_off,
            "bitmap2_off": bitmap_off + bitmap_blocks // 2 * block, "desc_off": desc_off,
            "max_mapnr": max_mapnr, "note_off": struct.unpack_from("<q", data, block + 48)[0]}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile")


def write_case(workdir, name, data):
    path = workdir / name
    path.write_bytes(data)
    return str(path)


def patched(data, off, fmt, *values):
    b = bytearray(data)
    struct.pack_into(fmt, b, off, *values)
    return bytes(b)


def nth_dumpable_pfn(k, n):
    """pfn of the n-th set bit of the 2nd bitmap: the page whose descriptor is number n."""
    bitmap = k["data"][k["bitmap2_off"]:k["desc_off"]]
    seen = 0
    for byte_index, byte in enumerate(bitmap):
        count = bin(byte).count("1")
        if seen + count > n:
            for bit in range(8):
                if byte >> bit & 1:
                    if seen == n:
                        return byte_index * 8 + bit
                    seen += 1
        seen += count
    raise AssertionError(f"fewer than {n + 1} dumpable pages")


# Cases that must be refused at open, with the file named and the reason in the message.
REFUSED = [
    ("empty", lambda k: b"", r"not a crash dump"),
    ("short-header", lambda k: k["data"][:100], r"too short for a kdump header"),
    ("no-sub-header", lambda k: k["data"][:k["block"]], r"sub header.*past the end"),
    ("cut-in-bitmap", lambda k: k["data"][:k["bitmap_off"] + 100], r"bitmaps .* past the end of the file"),
    ("block-size-0", lambda k: patched(k["data"], 428, "<i", 0), r"block size 0 is not a power of two"),
    ("block-size-1G", lambda k: patched(k["data"], 428, "<i", 1 << 30), r"block size 1073741824"),
    ("sub-header-lies", lambda k: patched(k["data"], 432, "<i", 1 << 30), r"bitmaps .* past the end of the file"),
    ("no-bitmap-blocks", lambda k: patched(k["data"], 436, "<I", 0), r"0 bitmap blocks cannot hold"),
    ("max-mapnr-lies", lambda k: patched(k["data"], k["block"] + 96, "<Q", 1 << 50), r"bitmap blocks cannot hold"),
    ("note-name-size-lies", lambda k: patched(k["data"], k["note_off"], "<I", 0xFFFFFFF0), r"name size \d+ runs past the note area"),
    ("cut-in-descriptors", lambda k: k["data"][:k["desc_off"] + 5000], r"page descriptor past the end of the file"),
    ("cut-in-page-data", lambda k: k["data"][:len(k["data"]) // 2], r"past the end of the file"),
]


@pytest.mark.parametrize("name,make,expected", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_with_reason(samples, kdump, workdir, name, make, expected):
    path = write_case(workdir, name, make(kdump))
    code, out = run_info(path, samples.vmlinux)
    assert code != 0, f"{name} was accepted:\n{out}"
    assert path in out, f"the error does not name the file:\n{out}"
    assert re.search(expected, out), f"expected /{expected}/ in:\n{out}"


def first_compressed_descriptor(k, start=200):
    """Index of the first zlib-compressed page descriptor from start on (not the shared zero page)."""
    n = start
    while struct.unpack_from("<I", k["data"], k["desc_off"] + 24 * n + 12)[0] != 1:
        n += 1
    return n


def corrupt_page_case(kdump, workdir, name, mutate):
    """A copy of the dump with one compressed page's descriptor or data damaged by mutate;
    returns (path, physical address of that page)."""
    k = kdump
    n = first_compressed_descriptor(k)
    data = bytearray(k["data"])
    mutate(data, k["desc_off"] + 24 * n)
    return write_case(workdir, name, bytes(data)), nth_dumpable_pfn(k, n) * k["block"]


def read_phys(path, vmlinux, paddr, *extra):
    target = gdbtest.stdio_target([path], *extra, vmlinux=vmlinux)
    target = target.replace(gdbtest.server_binary(), hostile_binary(), 1)
    return gdbtest.gdb_batch(target, [
        "maint packet Qqemu.PhyMemMode:1",
        f"x/2gx {paddr:#x}",
        f"x/2gx {paddr + 0x2000:#x}",
        "maint packet Qqemu.PhyMemMode:0",
    ] + gdbtest.kaslr_setup(vmlinux) + ["x/s linux_banner"], vmlinux=vmlinux, timeout=CASE_TIMEOUT * 2)


def scramble_data(data, desc):
    off, size = struct.unpack_from("<qI", data, desc)
    data[off:off + size] = b"\x55" * size


def descriptor_past_eof(data, desc):
    struct.pack_into("<q", data, desc, len(data) * 4)


def descriptor_oversized(data, desc):
    struct.pack_into("<I", data, desc + 8, 1 << 20)


def unknown_compression(data, desc):
    struct.pack_into("<I", data, desc + 12, 0x40)


DAMAGED_PAGE = [
    ("scrambled-page", scramble_data, r"corrupt|decompress|size"),
    ("descriptor-past-eof", descriptor_past_eof, r"past the end"),
    ("descriptor-oversized", descriptor_oversized, r"size|larger"),
    ("unknown-compression", unknown_compression, r"compression|flags"),
]


@pytest.mark.parametrize("name,mutate,expected", DAMAGED_PAGE, ids=[c[0] for c in DAMAGED_PAGE])
def test_damaged_page_does_not_hide_the_rest(samples, kdump, workdir, name, mutate, expected):
    path, paddr = corrupt_page_case(kdump, workdir, name, mutate)
    code, out = run_info(path, samples.vmlinux)
    assert code == 0, f"one damaged page made the whole dump unreadable:\n{out}"
    assert "sysrq triggered crash" in out
    with open(path, "rb") as f:
        before = hashlib.sha256(f.read()).hexdigest()
    out = read_phys(path, samples.vmlinux, paddr)
    lines = out.splitlines()
    bad = [l for l in lines if f"{paddr:#x}" in l.lower() or f"{paddr:x}" in l.lower()]
    assert any("Cannot access memory" in l for l in bad), f"damaged page {paddr:#x} was readable:\n{out}"
    assert re.search(rf"0x{paddr + 0x2000:x}:\s+0x", out), f"the next pages were not readable:\n{out}"
    assert "Linux version" in out, out
    with open(path, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == before, "the dump file changed"


def test_damaged_page_reason_on_stderr(samples, kdump, workdir):
    """The server says why a page is unreadable (--debug logs the error with the address)."""
    path, paddr = corrupt_page_case(kdump, workdir, "scrambled-page-debug", scramble_data)
    target = gdbtest.stdio_target([path], "--debug", vmlinux=samples.vmlinux)
    out = gdbtest.gdb_batch(target, ["maint packet Qqemu.PhyMemMode:1", f"x/2gx {paddr:#x}"],
                            vmlinux=samples.vmlinux, timeout=CASE_TIMEOUT * 2)
    assert re.search(rf"{paddr:#x}|{paddr:x}", out, re.I) and re.search(r"corrupt|decompress", out, re.I), out


# Damage inside the dumped kernel's memory: page tables and the task list, patched into a copy of
# an uncompressed ELF sample at the file offsets of the physical addresses involved.

VTOP_LEVEL = re.compile(r"^\s+(PGD|P4D|PUD|PMD|PTE)\s+table 0x([0-9a-f]+) \[\s*(\d+)\] = 0x([0-9a-f]+)", re.M)


@pytest.fixture(scope="module")
def elf(samples):
    dump = samples.dump(scenario="sysrq", paging="l5", format="elf", dump_level=31)
    with open(dump["files"][0], "rb") as f:
        data = f.read()
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    loads = []
    for i in range(phnum):
        p_type, _, p_offset, _, p_paddr, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1:
            loads.append((p_paddr, p_offset, p_filesz))
    return {"dump": dump, "data": data, "loads": loads}


def file_offset(elf, paddr):
    for start, offset, size in elf["loads"]:
        if start <= paddr < start + size:
            return offset + paddr - start
    raise AssertionError(f"physical {paddr:#x} is not stored in the ELF sample")


def gdb_on(path, vmlinux, commands, *extra):
    target = gdbtest.stdio_target([path], *extra, vmlinux=vmlinux)
    target = target.replace(gdbtest.server_binary(), hostile_binary(), 1)
    return gdbtest.gdb_batch(target, gdbtest.kaslr_setup(vmlinux) + commands, vmlinux=vmlinux,
                             timeout=CASE_TIMEOUT * 3)


def panic_thread(samples, elf):
    """gdb thread of the panicking CPU, whose task stack is vmalloc'd (mapped with 4 KiB
    pages); an idle CPU may be on swapper/0's stack in the kernel image (a 2 MiB page)."""
    return samples.truth(elf["dump"])["panic_cpu"] + 1


def stack_walk(samples, elf):
    """The panicking task's stack address and the page-table walk to it."""
    out = gdb_on(elf["dump"]["files"][0], samples.vmlinux,
                 [f"thread {panic_thread(samples, elf)}", "p/x $rsp", 'eval "monitor vtop %#lx", $rsp'])
    rsp = int(re.search(r"\$\d+ = (0x[0-9a-f]+)", out).group(1), 16)
    levels = {m[0]: (int(m[1], 16), int(m[2]), int(m[3], 16)) for m in VTOP_LEVEL.findall(out)}
    assert {"PUD", "PMD"} <= levels.keys(), out
    return rsp, levels


def patched_elf(elf, workdir, name, paddr, value):
    data = bytearray(elf["data"])
    struct.pack_into("<Q", data, file_offset(elf, paddr), value)
    return write_case(workdir, name, bytes(data))


def test_page_table_pointing_outside_memory(samples, elf, workdir):
    rsp, levels = stack_walk(samples, elf)
    table, index, entry = levels["PMD"]
    path = patched_elf(elf, workdir, "pmd-outside-memory", table + 8 * index,
                       (0x7FFFFFFF000 & ~0xFFF) | (entry & 0xFFF))
    out = gdb_on(path, samples.vmlinux, [f"thread {panic_thread(samples, elf)}", f"x/2gx {rsp:#x}", f"monitor vtop {rsp:#x}",
                                         "x/s linux_banner", "info threads"])
    assert re.search(rf"Cannot access memory at address {rsp:#x}", out), out
    assert re.search(r"beyond|outside|hole|not in the dump", out, re.I), out
    assert "Linux version" in out and "CPU#0" in out, out


def test_page_table_loop(samples, elf, workdir):
    rsp, levels = stack_walk(samples, elf)
    table, index, entry = levels["PUD"]
    # The PUD entry points back at its own table: the walk sees the table again one level down.
    path = patched_elf(elf, workdir, "pud-loop", table + 8 * index, table | (entry & 0xFFF))
    out = gdb_on(path, samples.vmlinux, [f"thread {panic_thread(samples, elf)}", f"x/2gx {rsp:#x}", f"monitor vtop {rsp:#x}",
                                         "x/s linux_banner", "thread apply all bt 2"])
    assert "Linux version" in out, out
    assert re.search(r"PTE\s+table", out) or "Cannot access memory" in out, out


def test_task_list_cycle(samples, elf, workdir):
    out = gdb_on(elf["dump"]["files"][0], samples.vmlinux,
                 ["p/x (unsigned long)init_task.tasks.next",
                  'eval "monitor vtop %#lx", (unsigned long)init_task.tasks.next'])
    va = int(re.search(r"\$\d+ = (0x[0-9a-f]+)", out).group(1), 16)
    pa = int(re.search(r"-> PA 0x([0-9a-f]+)", out).group(1), 16)
    path = patched_elf(elf, workdir, "task-list-cycle", pa, va)  # the second task's next is itself
    code, info = run_info(path, samples.vmlinux)
    assert code == 0, info
    assert re.search(r"cycle|loop", info, re.I), f"the cycle was not reported:\n{info}"
    out = gdb_on(path, samples.vmlinux, ["info threads"])
    assert "CPU#0" in out and re.search(r"^\s+\d+\s+Thread", out, re.M), out
