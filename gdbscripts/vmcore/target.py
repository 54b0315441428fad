"""Shared helpers for the vmcore gdb scripts: memory, symbols, types, threads.

Everything here talks to gdb only.  The target is either vmcore-gdbserver
(a crash dump served as a halted remote) or a live QEMU gdbstub; the few
places where they differ (thread details, `monitor kaslr`) are handled here
so the other modules need not care.

API (small on purpose):
  read(addr, size)            bytes from target memory in one read
  read_u64(addr), read_u32(addr), read_s32(addr)
  unpack_u64(buf, off) ...    little-endian field access in a bytes buffer
  symbol_address(name)        relocated address of a global/static symbol, or None
  lookup_type(name)           cached gdb.Type ("struct foo", "unsigned long")
  field_offset(type, path)    byte offset of "a.b.c" in a struct (anonymous members too)
  has_field(type, path)       True if the member path exists
  ulong(value)                gdb.Value cast to unsigned long, as a Python int
  thread_details(thread)      dict of the stub's key=value thread details
  thread_cpu(thread)          CPU of a thread: CPU threads, task threads, QEMU threads
  thread_task(thread)         task_struct address of a stub thread, or None
  is_cpu_thread(thread)       True for the stub's CPU threads and QEMU's vCPUs
  is_running_thread(thread)   True if its registers are a CPU's (not a saved frame)
  is_vmcore_stub()            True if the remote is vmcore-gdbserver
  monitor(cmd)                text printed by `monitor CMD`, or None if refused
  per_cpu_offset(cpu)         __per_cpu_offset[cpu]
  per_cpu_address(addr, cpu)  address of a per-CPU symbol's copy on cpu
  forget()                    drop caches (called on new symbols and stops)
"""

import re
import struct

import gdb

ULONG_MASK = 0xFFFFFFFFFFFFFFFF

_types = {}
_state = {}


def forget(_event=None):
    """Drop every cache that depends on symbols or on target memory."""
    _types.clear()
    _state.clear()


# --- ELF files (the few facts needed, read straight from the file) --------------

SHT_NOBITS = 8


def elf_sections(path):
    """{name: (address, flags, size, file offset, type)} of an ELF64 little-endian file."""
    with open(path, "rb") as f:
        ident = f.read(64)
        if ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
            raise gdb.GdbError("%s: not a 64-bit little-endian ELF file" % path)
        shoff, = struct.unpack_from("<Q", ident, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", ident, 0x3A)
        f.seek(shoff)
        table = f.read(shentsize * shnum)
        if len(table) < shentsize * shnum:
            raise gdb.GdbError("%s: section header table at offset 0x%x is truncated"
                               % (path, shoff))
        headers = [struct.unpack_from("<IIQQQQIIQQ", table, i * shentsize)
                   for i in range(shnum)]
        strtab = headers[shstrndx]
        f.seek(strtab[4])
        names = f.read(strtab[5])
    out = {}
    for name_off, sh_type, flags, addr, offset, size, *_rest in headers:
        end = names.find(b"\0", name_off)
        name = names[name_off:end].decode("ascii", "replace")
        if name:
            out[name] = (addr, flags, size, offset, sh_type)
    return out


def elf_section_bytes(path, sections, name):
    """The file bytes of section name (sections from elf_sections), or None."""
    if name not in sections:
        return None
    _addr, _flags, size, offset, sh_type = sections[name]
    if sh_type == SHT_NOBITS:
        return None
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(size)
    return data if len(data) == size else None


def vmlinux_path():
    """File gdb loaded vmlinux from (the objfile holding linux_banner)."""
    for name in ("linux_banner", "init_task"):
        try:
            sym = gdb.lookup_global_symbol(name) or gdb.lookup_static_symbol(name)
        except gdb.error:
            sym = None
        if sym is not None and sym.symtab is not None:
            return sym.symtab.objfile.filename
    path = gdb.current_progspace().filename
    if path:
        return path
    raise gdb.GdbError("no vmlinux loaded; run `file /path/to/vmlinux` "
                       "(with debug info) first")


def read(addr, size):
    """size bytes at addr, read with one target access; raises gdb.MemoryError."""
    return gdb.selected_inferior().read_memory(addr & ULONG_MASK, size).tobytes()


def unpack_u64(buf, off=0):
    return struct.unpack_from("<Q", buf, off)[0]


def unpack_u32(buf, off=0):
    return struct.unpack_from("<I", buf, off)[0]


def unpack_s32(buf, off=0):
    return struct.unpack_from("<i", buf, off)[0]


def unpack_u16(buf, off=0):
    return struct.unpack_from("<H", buf, off)[0]


def read_u64(addr):
    return unpack_u64(read(addr, 8))


def read_u32(addr):
    return unpack_u32(read(addr, 4))


def read_s32(addr):
    return unpack_s32(read(addr, 4))


def read_cstring(addr, limit=256):
    """NUL-terminated string at addr; reads never cross into the next page
    unless the string does, so a string at the end of a mapping is fine."""
    out = b""
    while len(out) < limit:
        here = addr + len(out)
        chunk = min(limit - len(out), 0x1000 - (here & 0xFFF))
        data = read(here, chunk)
        nul = data.find(b"\0")
        if nul >= 0:
            return (out + data[:nul]).decode("utf-8", "replace")
        out += data
    return out.decode("utf-8", "replace")


def symbol_address(name):
    """Address of a global or file-static symbol as gdb has it loaded
    (relocated once vmcore-setup ran), or None if there is no such symbol."""
    try:
        sym = gdb.lookup_global_symbol(name) or gdb.lookup_static_symbol(name)
    except gdb.error:
        sym = None
    if sym is not None and sym.addr_class != gdb.SYMBOL_LOC_TYPEDEF:
        try:
            value = sym.value()
            if value.address is not None:
                return int(value.address)
            return ulong(value)
        except gdb.error:
            pass
    # Linker-script symbols (_stext, __start_orc_unwind, ...) have no DWARF.
    try:
        return ulong(gdb.parse_and_eval("&%s" % name))
    except gdb.error:
        return None


def lookup_type(name):
    """gdb.Type by C name, cached until symbols change; raises gdb.GdbError."""
    gtype = _types.get(name)
    if gtype is None:
        try:
            gtype = gdb.lookup_type(name)
        except gdb.error:
            raise gdb.GdbError("type '%s' is not in the loaded debug info" % name)
        _types[name] = gtype
    return gtype


def _find_field(gtype, name):
    for field in gtype.strip_typedefs().fields():
        if field.name == name:
            return field.bitpos, field.type
        if not field.name and field.type is not None:
            inner_type = field.type.strip_typedefs()
            if inner_type.code in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION):
                inner = _find_field(inner_type, name)
                if inner is not None:
                    return field.bitpos + inner[0], inner[1]
    return None


def field_offset(gtype, path):
    """Byte offset of member path "a.b" (array members as "a[3]" are not
    supported) in gtype, a gdb.Type or a type name; raises gdb.GdbError."""
    if isinstance(gtype, str):
        gtype = lookup_type(gtype)
    offset = 0
    for part in path.split("."):
        found = _find_field(gtype, part)
        if found is None:
            raise gdb.GdbError("%s has no member '%s'" % (gtype, part))
        offset += found[0] // 8
        gtype = found[1]
    return offset


def has_field(gtype, path):
    try:
        field_offset(gtype, path)
        return True
    except gdb.GdbError:
        return False


def ulong(value):
    """A gdb.Value (pointer, int, enum) as a non-negative Python int."""
    return int(value.cast(gdb.lookup_type("unsigned long"))) & ULONG_MASK


# --- Threads --------------------------------------------------------------

def thread_details(thread=None):
    """The stub's thread details as a dict, e.g. {"cpu": "0", "task":
    "0x...", "comm": "bash"}.  "comm" is always last and may contain spaces.
    Empty for targets that do not give key=value details (QEMU)."""
    thread = thread or gdb.selected_thread()
    details = (getattr(thread, "details", None) or "") if thread else ""
    out = {}
    words = details.split(" ")
    for i, word in enumerate(words):
        key, sep, value = word.partition("=")
        if not sep:
            continue
        if key == "comm":
            out["comm"] = " ".join([value] + words[i + 1:])
            break
        out[key] = value
    return out


def is_cpu_thread(thread=None):
    """True for a CPU thread: the stub names them "CPU#n" and task threads
    "<pid> <comm>"; QEMU's vCPU threads have no name."""
    thread = thread or gdb.selected_thread()
    if thread is None:
        return False
    name = thread.name or ""
    if name.startswith("CPU#"):
        return True
    details = thread_details(thread)
    if details:
        return "running" not in details and "cpu" in details
    return not name


def is_running_thread(thread=None):
    """True if the thread's registers are those of a running CPU (CPU
    threads, and task threads that were on a CPU at the crash); False for
    a task switched out, whose registers come from its saved frame."""
    thread = thread or gdb.selected_thread()
    if is_cpu_thread(thread):
        return True
    details = thread_details(thread)
    if "running" in details:
        return details["running"] != "-1"
    return "at the crash" in (getattr(thread, "details", None) or "")


def thread_cpu(thread=None):
    """CPU number of a thread: for stub threads the details' cpu= (the CPU a
    task last ran on, for task threads); otherwise gdb thread number - 1,
    which is how QEMU's gdbstub numbers vCPUs."""
    thread = thread or gdb.selected_thread()
    if thread is None:
        raise gdb.GdbError("no thread selected")
    details = thread_details(thread)
    if "cpu" in details:
        return int(details["cpu"], 0)
    name = thread.name or ""
    if name.startswith("CPU#"):
        return int(name[4:].split()[0])
    # Free-form details such as "S sleeping, last on CPU#1".
    match = re.search(r"CPU#(\d+)", getattr(thread, "details", None) or "")
    if match:
        return int(match.group(1))
    return thread.num - 1


def thread_task(thread=None):
    """task_struct address the stub gives for a thread, or None."""
    value = thread_details(thread).get("task")
    return int(value, 16) if value else None


# --- The remote ------------------------------------------------------------

def monitor(cmd):
    """Output of `monitor CMD`, or None if the remote refuses or is absent."""
    try:
        return gdb.execute("monitor " + cmd, to_string=True)
    except gdb.error:
        return None


def is_vmcore_stub():
    """True if connected to vmcore-gdbserver (it names its threads, and
    answers `monitor kaslr`); cached until the next stop."""
    if "is_stub" not in _state:
        thread = gdb.selected_thread()
        named = bool(thread and ((thread.name or "").startswith("CPU#")
                                 or "task" in thread_details(thread)))
        _state["is_stub"] = named and monitor("kaslr") is not None
    return _state["is_stub"]


# --- Per-CPU ----------------------------------------------------------------

def per_cpu_offset(cpu):
    """__per_cpu_offset[cpu] (0 on a kernel without SMP)."""
    offsets = _state.get("per_cpu_offsets")
    if offsets is None:
        base = symbol_address("__per_cpu_offset")
        if base is None:
            offsets = []
        else:
            count = int(gdb.parse_and_eval("nr_cpu_ids"))
            data = read(base, 8 * count)
            offsets = [unpack_u64(data, 8 * i) for i in range(count)]
        _state["per_cpu_offsets"] = offsets
    if not offsets:
        return 0
    if not 0 <= cpu < len(offsets):
        raise gdb.GdbError("CPU %d is out of range (nr_cpu_ids=%d)" % (cpu, len(offsets)))
    return offsets[cpu]


def per_cpu_address(addr, cpu):
    """Address of CPU cpu's copy of the per-CPU object at (zero-based) addr."""
    return (addr + per_cpu_offset(cpu)) & ULONG_MASK


gdb.events.new_objfile.connect(forget)
gdb.events.stop.connect(forget)
if hasattr(gdb.events, "clear_objfiles"):
    gdb.events.clear_objfiles.connect(forget)


# --- Modules ----------------------------------------------------------------

class Module:
    """One loaded kernel module, read from its struct module.

    name, address (of the struct module), value (gdb.Value of it),
    text: list of (start, end) code ranges (core and init),
    base: load address of the core text, sections(): {name: address},
    orc_ip / orc_entries / num_orcs: the module's ORC table (0 if none)."""

    def __init__(self, value):
        self.value = value
        self.address = int(value.address)
        self.name = value["name"].string()
        self.text = []
        if has_field("struct module", "mem"):
            # 6.4+: one module_memory per kind; MOD_TEXT = 0, MOD_INIT_TEXT = 4.
            mem = value["mem"]
            for kind in ("MOD_TEXT", "MOD_INIT_TEXT"):
                index = int(gdb.parse_and_eval(kind))
                base, size = ulong(mem[index]["base"]), int(mem[index]["size"])
                if base and size:
                    self.text.append((base, base + size))
            self.base = ulong(mem[int(gdb.parse_and_eval("MOD_TEXT"))]["base"])
        else:
            for layout in ("core_layout", "init_layout"):
                base = ulong(value[layout]["base"])
                size = int(value[layout]["text_size"])
                if base and size:
                    self.text.append((base, base + size))
            self.base = ulong(value["core_layout"]["base"])
        self.orc_ip = self.orc_entries = self.num_orcs = 0
        if has_field("struct module", "arch.num_orcs"):
            arch = value["arch"]
            self.num_orcs = int(arch["num_orcs"])
            self.orc_ip = ulong(arch["orc_unwind_ip"])
            self.orc_entries = ulong(arch["orc_unwind"])

    def contains_text(self, addr):
        return any(lo <= addr < hi for lo, hi in self.text)

    def sections(self):
        """{section name: load address} from module->sect_attrs."""
        out = {}
        attrs = self.value["sect_attrs"]
        if ulong(attrs) == 0:
            return out
        count = int(attrs["nsections"])
        array = attrs["attrs"]
        for i in range(count):
            attr = array[i]
            name = attr["battr"]["attr"]["name"].string() \
                if has_field("struct module_sect_attr", "battr") else attr["name"].string()
            out[name] = ulong(attr["address"])
        return out


def kernel_modules():
    """Loaded modules (list of Module), in the kernel's list order; cached
    until the next stop or symbol change."""
    modules = _state.get("modules")
    if modules is None:
        modules = []
        head = symbol_address("modules")
        if head is not None:
            module_type = lookup_type("struct module")
            list_offset = field_offset(module_type, "list")
            node = read_u64(head)
            seen = 0
            while node != head and node and seen < 10000:
                addr = node - list_offset
                modules.append(Module(gdb.Value(addr).cast(module_type.pointer()).dereference()))
                node = read_u64(node)
                seen += 1
        _state["modules"] = modules
    return modules
