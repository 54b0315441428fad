"""Per-CPU variables: static ones and dynamic alloc_percpu() pointers.

A static per-CPU symbol keeps its zero-based link address (it is an offset
into the per-CPU area), and CPU n's copy lives at __per_cpu_offset[n] + that
offset.  A dynamic pointer returned by alloc_percpu() is the same kind of
offset, so both are resolved the same way: value + __per_cpu_offset[cpu].

Commands:  vpercpu EXPR [CPU]
Functions: $per_cpu_ptr(PTR, CPU)

The module also holds the cached struct layouts and error-naming wrappers
over target.py that the other analysis modules (slab, skb, virtio) share.
"""

import gdb

from . import target


# ---------------------------------------------------------------------------
# Thin layer over target.py shared by slab, skb and virtio: errors that name
# the address or symbol, and cached struct layouts for bulk-read decoding.

u64_at = target.unpack_u64
u32_at = target.unpack_u32
u16_at = target.unpack_u16
read_u64 = target.read_u64
read_cstring = target.read_cstring
field_offset = target.field_offset


def read_bytes(addr, size):
    """size bytes at addr in one target read; a gdb.GdbError names the range."""
    try:
        return target.read(addr, size)
    except gdb.MemoryError as err:
        raise gdb.GdbError("cannot read %d bytes at 0x%x: %s" % (size, addr, err))


def read_many(addresses, size, max_gap=4096, max_span=1 << 18):
    """{address: size bytes} for many same-sized structs, reading runs of
    nearby addresses (gaps up to max_gap, runs up to max_span bytes) in one
    target read each instead of one read per struct."""
    out = {}
    ordered = sorted(set(addresses))
    i = 0
    while i < len(ordered):
        start = ordered[i]
        j = i
        while (j + 1 < len(ordered) and ordered[j + 1] - (ordered[j] + size) <= max_gap
               and ordered[j + 1] + size - start <= max_span):
            j += 1
        try:
            block = read_bytes(start, ordered[j] + size - start)
            for addr in ordered[i:j + 1]:
                out[addr] = block[addr - start:addr - start + size]
        except gdb.GdbError:
            # A gap may be unmapped (e.g. an unpopulated per-CPU chunk page).
            for addr in ordered[i:j + 1]:
                out[addr] = read_bytes(addr, size)
        i = j + 1
    return out


def symbol_address(name):
    """Relocated address of a symbol the helpers cannot do without."""
    addr = target.symbol_address(name)
    if addr is None:
        raise gdb.GdbError("symbol %s is not in the loaded debug info" % name)
    return addr


def lookup_struct(name):
    return target.lookup_type("struct " + name)


class Layout:
    """Offsets and size of one struct, looked up once from debug info."""

    def __init__(self, struct_name, members):
        gtype = lookup_struct(struct_name)
        self.name = struct_name
        self.size = gtype.sizeof
        for attr, path in members.items():
            setattr(self, attr, target.field_offset(gtype, path))

    @staticmethod
    def has_member(struct_name, path):
        return target.has_field("struct " + struct_name, path)


_layouts = {}
_cache = {}


def layout(struct_name, members):
    """Cached Layout; dropped when symbols change."""
    key = (struct_name, tuple(sorted(members.items())))
    if key not in _layouts:
        _layouts[key] = Layout(struct_name, members)
    return _layouts[key]


def cached(key, compute):
    """Values fixed for one kernel image (nr_cpu_ids, page_offset_base...)."""
    if key not in _cache:
        _cache[key] = compute()
    return _cache[key]


def _forget_cache(_event=None):
    _layouts.clear()
    _cache.clear()


gdb.events.new_objfile.connect(_forget_cache)
if hasattr(gdb.events, "clear_objfiles"):
    gdb.events.clear_objfiles.connect(_forget_cache)


def parse_address(arg):
    """An address given as a number or any gdb expression (pointer or int)."""
    try:
        value = gdb.parse_and_eval(arg)
    except gdb.error as err:
        raise gdb.GdbError("cannot evaluate '%s': %s" % (arg, err))
    if value.type.strip_typedefs().code == gdb.TYPE_CODE_ARRAY:
        return int(value.address)
    return target.ulong(value)


# ---------------------------------------------------------------------------
# CPUs and per-CPU offsets.

def nr_cpu_ids():
    return cached("nr_cpu_ids", lambda: int(gdb.parse_and_eval("nr_cpu_ids")))


def possible_cpus():
    """CPU numbers set in __cpu_possible_mask, below nr_cpu_ids."""
    def compute():
        count = nr_cpu_ids()
        words = (count + 63) // 64
        data = read_bytes(symbol_address("__cpu_possible_mask"), words * 8)
        return [cpu for cpu in range(count)
                if (u64_at(data, (cpu // 64) * 8) >> (cpu % 64)) & 1]
    return cached("possible_cpus", compute)


def per_cpu_address(offset, cpu):
    return target.per_cpu_address(offset, cpu)


# Kernel and module data live in the upper half of the address space (from
# 0xff00000000000000 with 5-level paging), while a per-CPU symbol's address
# is a small offset into the per-CPU areas: vmlinux's .data..percpu is linked
# at 0, and a module's per-CPU section is loaded at its mod->percpu pointer,
# an offset into the first chunk's reserved region.
PER_CPU_SYMBOL_LIMIT = 1 << 47


def is_per_cpu_symbol_address(addr):
    return addr < PER_CPU_SYMBOL_LIMIT


def selected_cpu():
    return target.thread_cpu()


# ---------------------------------------------------------------------------
# Numeric summing of values (for per-CPU counters).

def _is_number(gtype):
    return gtype.strip_typedefs().code in (gdb.TYPE_CODE_INT, gdb.TYPE_CODE_BOOL,
                                           gdb.TYPE_CODE_CHAR, gdb.TYPE_CODE_ENUM,
                                           gdb.TYPE_CODE_FLT)


def numeric_leaves(value, prefix=""):
    """(path, python number) for every integer/float leaf of a value,
    descending into structs, unions' first member and arrays."""
    gtype = value.type.strip_typedefs()
    code = gtype.code
    if _is_number(gtype):
        if code == gdb.TYPE_CODE_FLT:
            yield prefix, float(value)
        else:
            yield prefix, int(value)
    elif code == gdb.TYPE_CODE_STRUCT:
        for field in gtype.fields():
            if field.is_base_class or not hasattr(field, "bitpos"):
                continue
            name = field.name if field.name else ""
            sub = prefix + "." + name if prefix and name else (name or prefix)
            yield from numeric_leaves(value[field], sub)
    elif code == gdb.TYPE_CODE_UNION:
        fields = gtype.fields()
        if fields:
            name = fields[0].name or ""
            sub = prefix + "." + name if prefix and name else (name or prefix)
            yield from numeric_leaves(value[fields[0]], sub)
    elif code == gdb.TYPE_CODE_ARRAY:
        low, high = gtype.range()
        if high - low < 64:
            for i in range(low, high + 1):
                yield from numeric_leaves(value[i], "%s[%d]" % (prefix, i))


def resolve_percpu(expr):
    """(offset, gdb.Type of the per-CPU object, kind) for an expression
    naming a static per-CPU variable or a __percpu pointer value."""
    try:
        value = gdb.parse_and_eval(expr)
    except gdb.error as err:
        raise gdb.GdbError("cannot evaluate '%s': %s" % (expr, err))
    address = value.address
    if address is not None and is_per_cpu_symbol_address(target.ulong(address)):
        return int(address), value.type, "static"
    gtype = value.type.strip_typedefs()
    if gtype.code == gdb.TYPE_CODE_PTR:
        pointee = gtype.target()
        if pointee.strip_typedefs().code == gdb.TYPE_CODE_VOID:
            raise gdb.GdbError("'%s' is a void pointer: cast it to the per-CPU type, "
                               "e.g. (struct foo *)%s" % (expr, expr))
        return target.ulong(value), pointee, "dynamic"
    raise gdb.GdbError("'%s' is neither a per-CPU variable (its address would be a per-CPU "
                       "offset, below 0x%x) nor a __percpu pointer" % (expr, PER_CPU_SYMBOL_LIMIT))


def value_on_cpu(offset, gtype, cpu):
    """The object of type gtype at offset on cpu, read with one memory read."""
    address = per_cpu_address(offset, cpu)
    data = read_bytes(address, gtype.sizeof)
    return gdb.Value(data, gtype), address


def _format_number(number):
    if isinstance(number, float):
        return repr(number)
    return "%d (0x%x)" % (number, number & 0xffffffffffffffff)


class VPerCpu(gdb.Command):
    """Show a per-CPU variable on one CPU or on every possible CPU.

Usage: vpercpu EXPR [CPU]

EXPR is either a static per-CPU variable of vmlinux or of a module (e.g. runqueues.nr_running,
current_task) or a __percpu pointer value from alloc_percpu() (e.g.
stats_ptr, or net->mib.tcp_statistics); the pointed-to type is used.
Each CPU's copy is printed: __per_cpu_offset[cpu] + the per-CPU offset.
With no CPU, every CPU in __cpu_possible_mask is shown, followed by the sum
of every numeric field over all CPUs."""

    def __init__(self):
        super().__init__("vpercpu", gdb.COMMAND_DATA, gdb.COMPLETE_EXPRESSION)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        if not argv:
            raise gdb.GdbError("usage: vpercpu EXPR [CPU]")
        cpus = None
        expr = arg.strip()
        if len(argv) >= 2 and argv[-1].isdigit():
            cpus = [int(argv[-1])]
            expr = expr[:expr.rstrip().rfind(argv[-1])].strip()
        offset, gtype, kind = resolve_percpu(expr)
        if cpus is None:
            cpus = possible_cpus()
        gdb.write("%s: %s per-CPU %s, offset 0x%x, %d CPU(s)\n"
                  % (expr, kind, gtype, offset, len(cpus)))
        sums = {}
        order = []
        for cpu in cpus:
            value, address = value_on_cpu(offset, gtype, cpu)
            gdb.write("CPU %d (0x%x): %s\n" % (cpu, address, value.format_string(pretty_structs=True)))
            for path, number in numeric_leaves(value):
                if path not in sums:
                    order.append(path)
                    sums[path] = 0
                sums[path] += number
        if len(cpus) > 1 and order:
            gdb.write("sum over %d CPUs:\n" % len(cpus))
            for path in order:
                gdb.write("  %s = %s\n" % (path or expr, _format_number(sums[path])))


class PerCpuPtr(gdb.Function):
    """$per_cpu_ptr(PTR, CPU): PTR (a __percpu pointer, or &static_var)
relocated to CPU's copy, with PTR's type: e.g.
  p *$per_cpu_ptr(&runqueues, 1)
  p *$per_cpu_ptr(stats_ptr, 0)"""

    def __init__(self):
        super().__init__("per_cpu_ptr")

    def invoke(self, pointer, cpu):
        if pointer.type.strip_typedefs().code != gdb.TYPE_CODE_PTR:
            raise gdb.GdbError("$per_cpu_ptr: first argument must be a pointer")
        address = per_cpu_address(int(pointer), int(cpu))
        return gdb.Value(address).cast(pointer.type)


VPerCpu()
PerCpuPtr()
