"""vmcore-setup: KASLR relocation of vmlinux and debug info of loaded modules.

After `target remote`, gdb's symbols are at vmlinux's link addresses while
the kernel ran shifted by a random KERNELOFFSET.  vmcore-setup
  1. finds the offset: `monitor kaslr` of vmcore-gdbserver, or (any other
     target, e.g. QEMU's gdbstub) the 2 MiB-aligned shift at which
     linux_banner reads "Linux version";
  2. reloads vmlinux with every allocated section shifted by it except
     .data..percpu, whose symbols are zero-based offsets into each CPU's
     per-CPU area (add-symbol-file -o OFFSET -s .data..percpu 0);
  3. walks the kernel's `modules` list and add-symbol-files each module's
     .ko at the addresses in module->sect_attrs (every section), preferring
     files with DWARF: user directories, /usr/lib/debug/lib/modules/<release>,
     the samples manifest's module_debug_dirs, then /lib/modules/<release>.
Running it again changes nothing unless the target changed.  It runs by
itself when the scripts are sourced while connected, after `target remote`
(first stop), and at the next prompt after a later `file vmlinux`.
"""

import json
import os
import re

import gdb

from . import target

TWO_MIB = 1 << 21
KASLR_RANGE = 1 << 30          # KERNEL_IMAGE_SIZE with RANDOMIZE_BASE
SHF_ALLOC = 0x2
PERCPU_SECTION = ".data..percpu"


# --- Finding vmlinux and the offsets ---------------------------------------------

def kaslr_from_monitor():
    """KERNELOFFSET from vmcore-gdbserver's `monitor kaslr`, or None."""
    text = target.monitor("kaslr")
    if not text:
        return None
    match = re.search(r"(?:KERNELOFFSET|kaslr_offset)[=\s]+(0x[0-9a-fA-F]+|\d+)", text)
    return int(match.group(1), 0) if match else None


def kaslr_from_banner(link_banner):
    """Shift at which linux_banner is found in target memory, or None."""
    inferior = gdb.selected_inferior()
    for shift in range(0, KASLR_RANGE, TWO_MIB):
        try:
            data = inferior.read_memory(link_banner + shift, 14).tobytes()
        except gdb.MemoryError:
            continue
        if data == b"Linux version ":
            return shift
    return None


def current_shift(sections):
    """How far gdb's loaded vmlinux symbols are from their link addresses."""
    text = target.symbol_address("_text")
    if text is None:
        text = target.symbol_address("_stext")
        link = sections.get(".text", (None,))[0]
        if text is None or link is None:
            raise gdb.GdbError("vmcore-setup: vmlinux has neither _text nor _stext")
        return text - link
    return text - sections[".text"][0]


def kernel_release():
    try:
        return gdb.parse_and_eval("init_uts_ns.name.release").string()
    except (gdb.error, gdb.MemoryError):
        return None


# --- Module files --------------------------------------------------------------

def cache_dir():
    for var in ("VMCORE_GDBSERVER_CACHE", "CACHE"):
        if os.environ.get(var):
            return os.environ[var]
    return os.path.expanduser("~/.cache/vmcore-gdbserver")


def manifest_module_dirs(release):
    path = os.path.join(cache_dir(), "samples", release, "manifest.json")
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return []
    dirs = list(manifest.get("module_debug_dirs") or [])
    return [d for d in dirs if isinstance(d, str)]


def module_search_dirs(release, extra):
    dirs = list(extra)
    if release:
        dirs.append("/usr/lib/debug/lib/modules/" + release)
        dirs += manifest_module_dirs(release)
        dirs.append("/lib/modules/" + release)
    return [d for d in dirs if os.path.isdir(d)]


def module_key(filename):
    """Module name a .ko file provides: 'virtio-blk.ko.debug' -> 'virtio_blk'."""
    for suffix in (".debug", ".ko"):
        if filename.endswith(suffix):
            filename = filename[:-len(suffix)]
    return filename.replace("-", "_")


def index_module_files(dirs):
    """{module name: [paths in search order]} for every *.ko / *.ko.debug."""
    index = {}
    for top in dirs:
        for root, _subdirs, files in os.walk(top):
            for name in files:
                if name.endswith(".ko") or name.endswith(".ko.debug"):
                    index.setdefault(module_key(name), []).append(os.path.join(root, name))
    return index


def has_dwarf(path):
    try:
        return ".debug_info" in target.elf_sections(path)
    except (OSError, gdb.GdbError):
        return False


# --- The command ----------------------------------------------------------------

class Setup:
    """What vmcore-setup did, so a second run can tell nothing changed."""

    def __init__(self):
        self.vmlinux = None       # (path, shift) as loaded by us
        self.modules = {}         # module name -> (path, base)
        self.running = False
        self.pending = False
        self.done_for_connection = None

    def run(self, extra_dirs=(), verbose=True):
        self.running = True
        try:
            return self._run(list(extra_dirs), verbose)
        finally:
            self.running = False

    def _say(self, verbose, text):
        if verbose:
            gdb.write("vmcore-setup: " + text + "\n")

    def _run(self, extra_dirs, verbose):
        if gdb.selected_thread() is None:
            raise gdb.GdbError("vmcore-setup: not connected; run `target remote ...` first")
        path = target.vmlinux_path()
        sections = target.elf_sections(path)
        if ".text" not in sections:
            raise gdb.GdbError("vmcore-setup: %s has no .text section" % path)
        shift_now = current_shift(sections)
        offset = kaslr_from_monitor()
        how = "monitor kaslr"
        if offset is None:
            link_banner = target.symbol_address("linux_banner")
            if link_banner is None:
                raise gdb.GdbError("vmcore-setup: vmlinux has no linux_banner symbol")
            offset = kaslr_from_banner(link_banner - shift_now)
            how = "linux_banner found in memory"
            if offset is None:
                raise gdb.GdbError("vmcore-setup: linux_banner is not readable at any "
                                   "2 MiB-aligned KASLR offset below 1 GiB; is this the "
                                   "vmlinux of the running kernel?")
        # `file vmlinux` after a setup adds a second, unrelocated copy.
        copies = sum(1 for o in gdb.objfiles() if o.filename == path)
        if offset != shift_now or copies > 1:
            self._relocate(path, sections, offset, how, verbose)
        else:
            self._say(verbose, "vmlinux symbols already at KASLR offset 0x%x" % offset)
        self._check_banner(path)
        self._load_modules(extra_dirs, verbose)
        self.done_for_connection = _connection_key()

    def _relocate(self, path, sections, offset, how, verbose):
        percpu = sections.get(PERCPU_SECTION)
        cmd = "add-symbol-file %s -o 0x%x" % (path, offset)
        if percpu is not None and percpu[0] == 0 and percpu[1] & SHF_ALLOC:
            cmd += " -s %s 0" % PERCPU_SECTION
        # Dropping the unrelocated symbols also drops every module objfile.
        gdb.execute("symbol-file", to_string=True)
        self.modules = {}
        gdb.execute(cmd, to_string=True)
        self.vmlinux = (path, offset)
        target.forget()
        gdb.invalidate_cached_frames()
        self._say(verbose, "vmlinux symbols relocated by KASLR offset 0x%x (%s); "
                  "per-CPU symbols stay zero-based" % (offset, how))

    @staticmethod
    def _check_banner(path):
        banner = target.symbol_address("linux_banner")
        try:
            text = target.read(banner, 14)
        except gdb.MemoryError:
            text = b""
        if text != b"Linux version ":
            raise gdb.GdbError("vmcore-setup: linux_banner at 0x%x does not read "
                               "'Linux version' after relocation: %s does not match "
                               "the target's kernel" % (banner, path))

    def _load_modules(self, extra_dirs, verbose):
        modules = target.kernel_modules()
        if not modules:
            self._say(verbose, "no modules loaded in the target")
            return
        release = kernel_release()
        index = index_module_files(module_search_dirs(release, extra_dirs))
        loaded_files = {o.filename for o in gdb.objfiles()}
        with_dwarf, symbols_only, missing, unchanged = [], [], [], 0
        for module in modules:
            if module.base == 0:
                continue
            candidates = index.get(module.name.replace("-", "_"), [])
            chosen = next((p for p in candidates if has_dwarf(p)), None)
            if chosen is None and candidates:
                chosen = candidates[0]
            if chosen is None:
                missing.append(module.name)
                continue
            known = self.modules.get(module.name)
            if known == (chosen, module.base) and chosen in loaded_files:
                unchanged += 1
                continue
            if known is not None and known[0] in loaded_files:
                gdb.execute("remove-symbol-file %s" % known[0], to_string=True)
            self._add_module(module, chosen)
            self.modules[module.name] = (chosen, module.base)
            (with_dwarf if has_dwarf(chosen) else symbols_only).append(module.name)
        parts = []
        if with_dwarf:
            parts.append("%d with debug info" % len(with_dwarf))
        if symbols_only:
            parts.append("%d with symbols only (no DWARF): %s"
                         % (len(symbols_only), ", ".join(symbols_only)))
        if unchanged:
            parts.append("%d already loaded" % unchanged)
        self._say(verbose, "modules: %s" % ("; ".join(parts) or "none loaded"))
        if missing:
            self._say(verbose, "no .ko file found for %d module(s): %s (pass directories "
                      "to vmcore-setup)" % (len(missing), ", ".join(missing)))

    @staticmethod
    def _add_module(module, path):
        in_file = target.elf_sections(path)
        addresses = module.sections()
        text = addresses.get(".text", module.base)
        cmd = "add-symbol-file %s 0x%x" % (path, text)
        for name, address in sorted(addresses.items()):
            if name == ".text" or name not in in_file or not in_file[name][1] & SHF_ALLOC:
                continue
            cmd += " -s %s 0x%x" % (name, address)
        # The loader drops SHF_ALLOC from a module's per-CPU section, so it is
        # not in sect_attrs; its symbols are offsets from mod->percpu.
        if PERCPU_SECTION in in_file and target.has_field("struct module", "percpu"):
            cmd += " -s %s 0x%x" % (PERCPU_SECTION, target.ulong(module.value["percpu"]))
        gdb.execute(cmd, to_string=True)


STATE = Setup()


def _connection_key():
    inferior = gdb.selected_inferior()
    connection = getattr(inferior, "connection", None)
    return (inferior.num, connection.num if connection is not None else None)


def _connected():
    try:
        return gdb.selected_thread() is not None and gdb.selected_inferior().pid != 0
    except gdb.error:
        return False


def _auto_run():
    if STATE.running or not _connected():
        return
    if STATE.done_for_connection == _connection_key():
        return
    try:
        STATE.run()
    except (gdb.GdbError, gdb.error, gdb.MemoryError) as err:
        gdb.write("vmcore-setup: not done automatically: %s\n" % err)
        STATE.done_for_connection = _connection_key()


def _on_stop(_event):
    _auto_run()


def _on_new_objfile(event):
    """A vmlinux loaded by hand (`file vmlinux` after `target remote`, or
    lx-symbols reloading it) is unrelocated: set up again, but only once
    the command that loaded it has finished (at the next prompt)."""
    if STATE.running or not _connected():
        return
    filename = event.new_objfile.filename or ""
    if os.path.basename(filename).startswith("vmlinux"):
        STATE.done_for_connection = None
        STATE.pending = True


def _before_prompt():
    if STATE.pending:
        STATE.pending = False
        _auto_run()


def on_source():
    """Called by vmcore_gdb.py: set up now if already connected."""
    _auto_run()


class VmcoreSetup(gdb.Command):
    """Relocate vmlinux for KASLR and load every module's debug info.

Usage: vmcore-setup [DIR...]

Finds the KASLR offset (`monitor kaslr` of vmcore-gdbserver, else by
locating linux_banner in memory), reloads vmlinux with all sections shifted
except the zero-based .data..percpu, then loads each loaded module's .ko
(DWARF preferred) at the section addresses from module->sect_attrs.
Modules are searched for in the DIRs given, /usr/lib/debug/lib/modules/<release>,
the samples manifest's module_debug_dirs ($CACHE/samples/<release>/manifest.json)
and /lib/modules/<release>.  Modules without a file are listed.
Running it again changes nothing.  It runs by itself once per connection."""

    def __init__(self):
        super().__init__("vmcore-setup", gdb.COMMAND_FILES, gdb.COMPLETE_FILENAME)

    def invoke(self, arg, from_tty):
        dirs = [os.path.abspath(os.path.expanduser(d)) for d in gdb.string_to_argv(arg)]
        for d in dirs:
            if not os.path.isdir(d):
                raise gdb.GdbError("vmcore-setup: %s is not a directory" % d)
        STATE.run(dirs)


class VmcorePrefix(gdb.Command):
    """vmcore-gdbserver helpers for kernel crash dumps.

Commands: vmcore-setup (KASLR and modules), vbt (backtrace across exception,
IRQ and syscall frames; plain `bt` crosses them too through the ORC unwinder),
plus the analysis helpers when present (vpercpu, vkmem, ...: see `help user-defined`
and `apropos vmcore`).  Parameter: vmcore-orc (on/off)."""

    def __init__(self):
        super().__init__("vmcore", gdb.COMMAND_USER, prefix=True)


VmcoreSetup()
VmcorePrefix()
gdb.events.stop.connect(_on_stop)
gdb.events.new_objfile.connect(_on_new_objfile)
gdb.events.before_prompt.connect(_before_prompt)
