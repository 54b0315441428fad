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
Each table is read from target memory in one read, decoded once and cached.
The orc_entry layout (field offsets and bit-fields) comes from DWARF, and the
type numbering is chosen by the layout: kernels whose entry has an 'end' bit
(up to 6.3) number CALL/REGS/REGS_PARTIAL 0/1/2; later ones have
UNDEFINED/END_OF_STACK/CALL/REGS/REGS_PARTIAL = 0..4.
"""

import bisect

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
    """A sorted ORC table: absolute ips and the raw entries."""

    def __init__(self, layout, ip_table_addr, entries_addr, count):
        raw_ips = target.read(ip_table_addr, 4 * count)
        self.ips = [ip_table_addr + 4 * i + target.unpack_s32(raw_ips, 4 * i)
                    for i in range(count)]
        self.entries = target.read(entries_addr, layout.size * count)
        self.layout = layout

    def find(self, ip):
        """The entry covering ip (the last one starting at or below it)."""
        index = bisect.bisect_right(self.ips, ip) - 1
        if index < 0:
            return None
        return self.layout.decode(self.entries, index, self.ips[index])


class Tables:
    """All ORC tables of the target, loaded on first use."""

    def __init__(self):
        self.layout = None
        self.vmlinux = None
        self.vmlinux_key = None
        self.text_ranges = []
        self.modules = {}

    def _load_vmlinux(self):
        start = target.symbol_address("__start_orc_unwind_ip")
        if start is None:
            raise gdb.GdbError("vmlinux has no ORC tables (__start_orc_unwind_ip): "
                               "the kernel was not built with CONFIG_UNWINDER_ORC")
        if self.vmlinux_key == start:
            return
        self.layout = Layout()
        stop = target.symbol_address("__stop_orc_unwind_ip")
        entries = target.symbol_address("__start_orc_unwind")
        self.vmlinux = Table(self.layout, start, entries, (stop - start) // 4)
        ranges = []
        for first, last in (("_stext", "_etext"), ("_sinittext", "_einittext")):
            lo, hi = target.symbol_address(first), target.symbol_address(last)
            if lo is not None and hi is not None:
                ranges.append((lo, hi))
        self.text_ranges = ranges
        self.modules = {}
        self.vmlinux_key = start

    def _module_table(self, module):
        key = (module.address, module.orc_ip, module.num_orcs)
        table = self.modules.get(key)
        if table is None:
            table = Table(self.layout, module.orc_ip, module.orc_entries, module.num_orcs)
            self.modules[key] = table
        return table

    def find(self, ip):
        """(entry, where) for ip: where is "vmlinux", a module name, or None
        with entry None when no table covers ip."""
        self._load_vmlinux()
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
