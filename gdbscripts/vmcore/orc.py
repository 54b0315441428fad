"""ORC unwind tables of vmlinux and of loaded modules, read from the target.

The kernel (CONFIG_UNWINDER_ORC) keeps, for every code range, an orc_entry
that says where the caller's stack pointer is (sp_reg + sp_offset), where
the caller's frame pointer was saved (bp_reg + bp_offset), and whether the
frame is an ordinary call frame or holds a struct pt_regs (an exception,
interrupt or syscall entry).  Tables:
  vmlinux:  __start_orc_unwind_ip .. __stop_orc_unwind_ip (s32, each relative
            to its own address) and __start_orc_unwind (the entries), sorted
            at build time;
  modules:  module->arch.orc_unwind_ip / orc_unwind / num_orcs, sorted at load.
vmlinux's tables come from the vmlinux file (see vmlinux_file_table), module
tables from target memory in one read each; entries are decoded on lookup.
The orc_entry layout (field offsets and bit-fields) comes from DWARF, and the
type numbering is chosen by the layout: kernels whose entry has an 'end' bit
(up to 6.3) number CALL/REGS/REGS_PARTIAL 0/1/2; later ones have
UNDEFINED/END_OF_STACK/CALL/REGS/REGS_PARTIAL = 0..4.
"""

import array
import bisect
import sys

import gdb

from . import target

# ORC register numbers (arch/x86/include/asm/orc_types.h; stable since 4.14).
REG_UNDEFINED = 0
REG_PREV_SP = 1
REG_DX = 2
REG_DI = 3
REG_BP = 4
REG_SP = 5
REG_R10 = 6
REG_R13 = 7
REG_BP_INDIRECT = 8
REG_SP_INDIRECT = 9

# Frame kinds, independent of the kernel's numbering.
CALL = "call"
REGS = "regs"
REGS_PARTIAL = "regs_partial"
END = "end"
UNDEFINED = "undefined"

KERNEL_SPACE = 0xFFFF800000000000


class Entry:
    """One decoded orc_entry; ip is the start of the range it covers."""

    __slots__ = ("ip", "sp_offset", "bp_offset", "sp_reg", "bp_reg", "kind")

    def __init__(self, ip, sp_offset, bp_offset, sp_reg, bp_reg, kind):
        self.ip = ip
        self.sp_offset = sp_offset
        self.bp_offset = bp_offset
        self.sp_reg = sp_reg
        self.bp_reg = bp_reg
        self.kind = kind

    def __repr__(self):
        return ("orc_entry(ip=0x%x sp=%d%+d bp=%d%+d %s)"
                % (self.ip, self.sp_reg, self.sp_offset, self.bp_reg, self.bp_offset, self.kind))


class Layout:
    """Where the fields of struct orc_entry are, from DWARF."""

    def __init__(self):
        gtype = target.lookup_type("struct orc_entry")
        self.size = gtype.sizeof
        self.fields = {}
        for field in gtype.fields():
            bitsize = field.bitsize or field.type.sizeof * 8
            plain = field.type.strip_typedefs()
            signed = plain.code == gdb.TYPE_CODE_INT and "unsigned" not in str(plain)
            self.fields[field.name] = (field.bitpos, bitsize, signed)
        for needed in ("sp_offset", "bp_offset", "sp_reg", "bp_reg", "type"):
            if needed not in self.fields:
                raise gdb.GdbError("struct orc_entry has no member '%s'" % needed)
        self.has_end_bit = "end" in self.fields
        if self.has_end_bit:
            self.kinds = {0: CALL, 1: REGS, 2: REGS_PARTIAL}
        else:
            self.kinds = {0: UNDEFINED, 1: END, 2: CALL, 3: REGS, 4: REGS_PARTIAL}

    def _get(self, word, name):
        bitpos, bitsize, signed = self.fields[name]
        value = (word >> bitpos) & ((1 << bitsize) - 1)
        if signed and value >> (bitsize - 1):
            value -= 1 << bitsize
        return value

    def decode(self, data, index, ip):
        word = int.from_bytes(data[index * self.size:(index + 1) * self.size], "little")
        kind = self.kinds.get(self._get(word, "type"), UNDEFINED)
        if self.has_end_bit and self._get(word, "end"):
            kind = END
        return Entry(ip, self._get(word, "sp_offset"), self._get(word, "bp_offset"),
                     self._get(word, "sp_reg"), self._get(word, "bp_reg"), kind)


class Table:
    """A sorted ORC table: raw ip offsets (s32, each relative to its own slot
    at ip_table_addr) and the raw entries; decoded only on lookup."""

    def __init__(self, layout, ip_table_addr, raw_ips, entries):
        self.base = ip_table_addr
        self.rel = array.array("i", raw_ips)
        if sys.byteorder != "little":
            self.rel.byteswap()
        self.entries = entries
        self.layout = layout

    def ip(self, index):
        return self.base + 4 * index + self.rel[index]

    def find(self, ip):
        """The entry covering ip (the last one starting at or below it)."""
        index = bisect.bisect_right(range(len(self.rel)), ip, key=self.ip) - 1
        if index < 0:
            return None
        return self.layout.decode(self.entries, index, self.ip(index))


def read_table(layout, ip_table_addr, entries_addr, count):
    """A table read from target memory (module tables, or vmlinux without its file)."""
    return Table(layout, ip_table_addr, target.read(ip_table_addr, 4 * count),
                 target.read(entries_addr, layout.size * count))


def vmlinux_file_table(layout, start, entries_addr, count):
    """vmlinux's table from the vmlinux file gdb loaded, or None.

    gdb reads target memory at a few MB/s (hex packets decoded byte by byte),
    so the 2 MB of a 6.x kernel's tables cost about a second through the
    stub; the file holds the same bytes (sorted at build time, never changed
    at run time), and its ip offsets are relative, so KASLR does not matter.
    The first entries are compared with target memory to catch a vmlinux that
    does not belong to the dump."""
    try:
        path = target.vmlinux_path()
        sections = target.elf_sections(path)
        raw_ips = target.elf_section_bytes(path, sections, ".orc_unwind_ip")
        entries = target.elf_section_bytes(path, sections, ".orc_unwind")
    except (OSError, gdb.GdbError):
        return None
    if not raw_ips or not entries or len(raw_ips) != 4 * count \
            or len(entries) != layout.size * count:
        return None
    probe = min(count, 16)
    try:
        if target.read(start, 4 * probe) != raw_ips[:4 * probe] or \
                target.read(entries_addr, layout.size * probe) != entries[:layout.size * probe]:
            return None
    except gdb.MemoryError:
        pass  # tables excluded from the dump: the file is all there is
    return Table(layout, start, raw_ips, entries)


class Tables:
    """All ORC tables of the target, loaded on first use.

    An unwind looks up the same few hundred return addresses over and over
    (every sleeping task ends in __schedule, every syscall in
    entry_SYSCALL_64), so answers are kept per ip until symbols change or
    the target stops (module tables come from target memory)."""

    def __init__(self):
        self.layout = None
        self.vmlinux = None
        self.vmlinux_key = None
        self.text_ranges = []
        self.modules = {}
        self.found = {}          # ip -> (entry, where)
        self.checked = False     # vmlinux_key checked since the last forget
        gdb.events.new_objfile.connect(self.forget)
        gdb.events.stop.connect(self.forget)
        if hasattr(gdb.events, "clear_objfiles"):
            gdb.events.clear_objfiles.connect(self.forget)

    def forget(self, _event=None):
        self.found.clear()
        self.checked = False

    def _load_vmlinux(self):
        if self.checked:
            return
        start = target.symbol_address("__start_orc_unwind_ip")
        if start is None:
            raise gdb.GdbError("vmlinux has no ORC tables (__start_orc_unwind_ip): "
                               "the kernel was not built with CONFIG_UNWINDER_ORC")
        if self.vmlinux_key == start:
            self.checked = True
            return
        self.layout = Layout()
        stop = target.symbol_address("__stop_orc_unwind_ip")
        entries = target.symbol_address("__start_orc_unwind")
        count = (stop - start) // 4
        self.vmlinux = (vmlinux_file_table(self.layout, start, entries, count)
                        or read_table(self.layout, start, entries, count))
        ranges = []
        for first, last in (("_stext", "_etext"), ("_sinittext", "_einittext")):
            lo, hi = target.symbol_address(first), target.symbol_address(last)
            if lo is not None and hi is not None:
                ranges.append((lo, hi))
        self.text_ranges = ranges
        self.modules = {}
        self.vmlinux_key = start
        self.checked = True

    def _module_table(self, module):
        key = (module.address, module.orc_ip, module.num_orcs)
        table = self.modules.get(key)
        if table is None:
            table = read_table(self.layout, module.orc_ip, module.orc_entries, module.num_orcs)
            self.modules[key] = table
        return table

    def find(self, ip):
        """(entry, where) for ip: where is "vmlinux", a module name, or None
        with entry None when no table covers ip."""
        found = self.found.get(ip)
        if found is None:
            self._load_vmlinux()
            found = self._find(ip)
            self.found[ip] = found
        return found

    def _find(self, ip):
        for lo, hi in self.text_ranges:
            if lo <= ip < hi:
                return self.vmlinux.find(ip), "vmlinux"
        for module in target.kernel_modules():
            if module.contains_text(ip):
                if not module.num_orcs:
                    return None, module.name
                return self._module_table(module).find(ip), module.name
        return None, None


TABLES = Tables()
