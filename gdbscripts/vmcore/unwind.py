"""A gdb unwinder for x86_64 kernel frames driven by the kernel's ORC tables,
and the `vbt` backtrace command.

gdb's DWARF unwinder stops at assembly entry code (exception, interrupt,
NMI and syscall entries) and cannot switch from an IRQ or IST stack back to
the task stack.  The ORC tables describe every instruction of the kernel,
including those entries, so this unwinder follows the kernel's own
arch/x86/kernel/unwind_orc.c rules:
  * the caller's stack pointer is sp_reg + sp_offset (SP, BP, an indirect
    slot as left by call_on_stack() on the IRQ stack, or R10/R13/DI/DX right
    after an entry);
  * CALL frames: the return address is the word below the caller's sp;
  * REGS frames: a full struct pt_regs sits at the computed sp, and the
    trapped context (every general register, rip, rsp, rflags, cs, ss)
    comes from it;
  * REGS_PARTIAL frames: only the hardware iret frame is saved; the other
    registers are still those of the trapped context;
  * the unwind ends at an end-of-stack entry or at a pt_regs from user mode
    (syscall entry), without inventing a user-space frame; a CPU caught in
    user space shows that one frame only.
Frames of user space, kernel code no ORC table covers and ranges whose ORC
entry is undefined are left to gdb's other unwinders (DWARF CFI from
vmlinux's .debug_frame).

Each crossing (a pt_regs) is remembered so that `vbt` can print it the way
crash prints `[exception RIP: ...]` blocks.  `set vmcore-orc off` (or
`disable unwinder global vmcore-orc`) turns the unwinder off.
"""

import gdb
from gdb.FrameDecorator import FrameDecorator, FrameVars, SymValueWrapper
from gdb.unwinder import Unwinder, register_unwinder

from . import orc, target

# struct pt_regs members -> gdb register names, in crash's print order.
PT_REGS_GPRS = (("ax", "rax"), ("bx", "rbx"), ("cx", "rcx"), ("dx", "rdx"), ("si", "rsi"),
                ("di", "rdi"), ("bp", "rbp"), ("r8", "r8"), ("r9", "r9"), ("r10", "r10"),
                ("r11", "r11"), ("r12", "r12"), ("r13", "r13"), ("r14", "r14"), ("r15", "r15"))
PT_REGS_IRET = (("ip", "rip"), ("cs", "cs"), ("flags", "eflags"), ("sp", "rsp"), ("ss", "ss"))
CALLEE_SAVED = ("rbx", "rbp", "r12", "r13", "r14", "r15")
ORC_SOURCE_REGS = {orc.REG_R10: "r10", orc.REG_R13: "r13", orc.REG_DI: "rdi", orc.REG_DX: "rdx"}
# Registers kept unchanged across every kernel frame of one thread.
INVARIANT_REGS = ("gs_base", "fs_base")
MAX_KERNEL_FRAMES = 512


class FrameId:
    """gdb frame id: stack address (plus a shift, see OrcUnwinder.shifts) and
    code address."""

    def __init__(self, sp, pc, shift=0):
        # gdb 13 wants gdb.Value attributes, not Python ints.
        self.sp = gdb.Value((sp + shift) & target.ULONG_MASK)
        self.pc = gdb.Value(pc)


class StackBytes:
    """Target memory for the unwinder, read in aligned blocks and kept until
    the target stops or its memory is written.

    Each read through gdb is a round trip to the remote, and one task's
    unwind reads a word or two per frame from the same few hundred bytes of
    its stack; a block holds several frames.  Blocks are aligned, so one
    never crosses a page: where a block cannot be read, the exact range is
    read instead and its error is the one raised."""

    BLOCK = 256
    MAX_BLOCKS = 8192

    def __init__(self):
        self.blocks = {}

    def clear(self):
        self.blocks.clear()

    def _block(self, base):
        data = self.blocks.get(base)
        if data is None:
            if len(self.blocks) >= self.MAX_BLOCKS:
                self.blocks.clear()
            try:
                data = target.read(base, self.BLOCK)
            except gdb.MemoryError:
                data = b""
            self.blocks[base] = data
        return data

    def read(self, addr, size):
        addr &= target.ULONG_MASK
        first = addr & -self.BLOCK
        last = (addr + size - 1) & -self.BLOCK
        offset = addr - first
        if first == last:
            data = self._block(first)
            if len(data) < offset + size:
                return target.read(addr, size)
            return data[offset:offset + size]
        blocks = [self._block(base) for base in range(first, last + 1, self.BLOCK)]
        if not all(blocks):
            return target.read(addr, size)
        return b"".join(blocks)[offset:offset + size]

    def read_u64(self, addr):
        return int.from_bytes(self.read(addr, 8), "little")


class Crossing:
    """A struct pt_regs met while unwinding: the trapped context."""

    def __init__(self, address, partial, values, entry_pc, entry_sp):
        self.address = address
        self.partial = partial
        self.values = values          # gdb register name -> int (known ones)
        self.entry_pc = entry_pc      # frame whose ORC entry said REGS
        self.entry_sp = entry_sp

    @property
    def user_mode(self):
        return (self.values.get("cs", 0) & 3) == 3


class _PtRegs:
    """Offsets of struct pt_regs members, from DWARF."""

    def __init__(self):
        gtype = target.lookup_type("struct pt_regs")
        self.size = gtype.sizeof
        self.offset = {}
        for member, _ in PT_REGS_GPRS + PT_REGS_IRET + (("orig_ax", "orig_rax"),):
            self.offset[member] = target.field_offset(gtype, member)


class OrcUnwinder(Unwinder):
    """Unwinds kernel frames with the ORC tables (see the module doc)."""

    def __init__(self):
        super().__init__("vmcore-orc")
        self.crossings = {}      # (pc, sp) of the entry frame -> Crossing
        self.exact_pcs = set()   # (pc, sp) of frames whose pc is not a return address
        self.terminal = set()    # (pc, sp) of the outermost kernel frames
        # gdb ends a backtrace when a caller's frame id lies below its
        # callee's ("previous frame inner to this frame"), which is what an
        # exception on an IST or IRQ stack looks like when the interrupted
        # code ran on a task stack at a lower address.  From such a switch
        # on, frame ids are shifted up so they keep growing; frames before
        # any switch keep their plain stack address, as gdb's own unwinders
        # (used where ORC has no entry) give them.
        self.shifts = {}         # (pc, sp) of a frame -> its FrameId shift
        # What this unwinder gave each caller in the thread being unwound,
        # so that unwinding the caller in turn need not ask gdb for it:
        # (pc, sp) of the caller -> (rbp as int or None, rbp as the
        # gdb.Value saved or None, [(name, gdb.Value)] of INVARIANT_REGS).
        # Emptied when another thread is unwound (a CPU thread and the task
        # running on it share a stack) and when registers or memory change.
        self.carried = {}
        self._carried_thread = None
        self.stack = StackBytes()
        self._pt_regs = None
        self._fork_pcs = None
        self._reg_types = {}
        gdb.events.stop.connect(self.forget)
        gdb.events.new_objfile.connect(self.forget)
        for event in ("memory_changed", "register_changed"):
            if hasattr(gdb.events, event):
                getattr(gdb.events, event).connect(self.forget_values)

    def forget(self, _event=None):
        self.crossings.clear()
        self.exact_pcs.clear()
        self.terminal.clear()
        self.shifts.clear()
        self.carried.clear()
        self.stack.clear()
        self._pt_regs = None
        self._fork_pcs = None

    def forget_values(self, _event=None):
        self.stack.clear()
        self.carried.clear()

    # -- helpers ------------------------------------------------------------

    def _pt_regs_layout(self):
        if self._pt_regs is None:
            self._pt_regs = _PtRegs()
        return self._pt_regs

    def _value(self, pending, name, number):
        """number as a gdb.Value of register name's type."""
        known = self._reg_types.get(name)
        if known is None:
            gtype = pending.read_register(name).type
            known = (gtype, gtype.sizeof, (1 << (8 * gtype.sizeof)) - 1)
            self._reg_types[name] = known
        gtype, size, mask = known
        return gdb.Value((number & mask).to_bytes(size, "little"), gtype)

    @staticmethod
    def _register(pending, name):
        """A register of the pending frame as a gdb.Value, or None if unknown
        (optimized out or unavailable: gdb gives up on an unwind whose saved
        registers include an unavailable one, and fs_base is unavailable on
        a sleeping task)."""
        try:
            value = pending.read_register(name)
            if value.is_optimized_out:
                return None
            int(value)
            return value
        except (gdb.error, ValueError):
            return None

    @staticmethod
    def _read_reg(pending, name):
        """A register of the pending frame as an int, or None if unknown."""
        value = OrcUnwinder._register(pending, name)
        return None if value is None else int(value) & target.ULONG_MASK

    @staticmethod
    def _frame0_is_exact():
        """Frame 0's pc is exact on CPU threads; on a sleeping task it is the
        return address into __schedule (or ret_from_fork for a new task)."""
        return target.is_running_thread()

    def _is_exact(self, level, pc, sp):
        if level == 0:
            if self._frame0_is_exact():
                return True
            if self._fork_pcs is None:
                self._fork_pcs = (target.symbol_address("ret_from_fork"),
                                  target.symbol_address("ret_from_fork_asm"))
            return pc in self._fork_pcs
        return (pc, sp) in self.exact_pcs

    # -- the unwinder -------------------------------------------------------

    def __call__(self, pending):
        if not ENABLED.value:
            return None
        pc = self._read_reg(pending, "rip")
        sp = self._read_reg(pending, "rsp")
        if pc is None or sp is None:
            return None
        try:
            level = pending.level()
        except AttributeError:
            level = 1
        thread = gdb.selected_thread()
        if thread is not self._carried_thread:
            self.carried.clear()
            self._carried_thread = thread
        if pc < orc.KERNEL_SPACE:
            if level == 0 and pc != 0:
                # A CPU caught in user space: gdb has no symbols or CFI for
                # the program, and its heuristics would read garbage frames.
                return self._outermost(pending, FrameId(sp, pc), pc, sp, sp)
            return None
        if level > MAX_KERNEL_FRAMES:
            return None
        try:
            return self._unwind(pending, level, pc, sp)
        except (gdb.MemoryError, gdb.GdbError, gdb.error):
            return None

    def _unwind(self, pending, level, pc, sp):
        exact = self._is_exact(level, pc, sp)
        entry = orc.TABLES.find(pc if exact else pc - 1)[0]
        if entry is None:
            return None
        kind = entry.kind
        shift = self.shifts.get((pc, sp), 0)
        if kind == orc.END:
            return self._outermost(pending, FrameId(sp, entry.ip, shift), pc, sp, sp)
        sp_reg = entry.sp_reg
        if kind == orc.UNDEFINED or sp_reg == orc.REG_UNDEFINED:
            # objtool left this range undescribed (e.g. the tail of
            # __crash_kexec after crash_setup_regs): gdb's DWARF CFI unwinds it.
            return None
        carried = self.carried.get((pc, sp)) if level else None
        if carried is None:
            bp_value = self._register(pending, "rbp")
            bp = None if bp_value is None else int(bp_value) & target.ULONG_MASK
            invariants = None
        else:
            bp, bp_value, invariants = carried
        stack = self.stack

        # The caller's stack pointer (or, for REGS frames, the pt_regs base).
        if sp_reg == orc.REG_SP:
            cfa = sp + entry.sp_offset
        elif sp_reg == orc.REG_BP:
            if bp is None:
                return None
            cfa = bp + entry.sp_offset
        elif sp_reg == orc.REG_SP_INDIRECT:
            cfa = stack.read_u64(sp) + entry.sp_offset
        elif sp_reg == orc.REG_BP_INDIRECT:
            if bp is None:
                return None
            cfa = stack.read_u64(bp + entry.sp_offset)
        elif sp_reg in ORC_SOURCE_REGS:
            cfa = self._read_reg(pending, ORC_SOURCE_REGS[sp_reg])
            if cfa is None:
                return None
        else:
            return None
        cfa &= target.ULONG_MASK
        frame_id = FrameId(cfa, entry.ip, shift)

        # Registers of the caller: ints, or gdb.Values of this frame's
        # registers that the caller shares.
        caller = {}
        crossing = None
        if kind == orc.CALL:
            caller["rip"] = stack.read_u64(cfa - 8)
            caller["rsp"] = cfa
        else:
            crossing = self._read_pt_regs(pending, entry, cfa, pc, sp)
            caller.update(crossing.values)
            self.crossings[(pc, sp)] = crossing
            if crossing.user_mode:
                # Syscall or exception from user space: the kernel stack ends.
                return self._outermost(pending, frame_id, pc, sp, cfa)

        # The caller's frame pointer.
        bp_reg = entry.bp_reg
        if bp_reg == orc.REG_PREV_SP:
            caller["rbp"] = stack.read_u64(cfa + entry.bp_offset)
        elif bp_reg == orc.REG_BP:
            if bp is None:
                return None
            caller["rbp"] = stack.read_u64(bp + entry.bp_offset)
        elif "rbp" not in caller and bp_value is not None:
            caller["rbp"] = bp_value

        if crossing is not None and crossing.partial:
            # Only the iret frame was pushed: the other registers still hold
            # the trapped context's values.
            for _member, name in PT_REGS_GPRS:
                if name not in caller:
                    value = self._register(pending, name)
                    if value is not None:
                        caller[name] = value

        if invariants is None:
            invariants = []
            for name in INVARIANT_REGS:
                value = self._register(pending, name)
                if value is not None:
                    invariants.append((name, value))
        caller.update(invariants)

        caller_rsp = caller["rsp"]
        caller_key = (caller["rip"], caller_rsp)
        if crossing is not None:
            self.exact_pcs.add(caller_key)
        if caller_rsp < cfa:
            # The caller's id (at or above its rsp) must end up above ours.
            shift = (cfa + shift - caller_rsp + 1) & target.ULONG_MASK
        self.shifts[caller_key] = shift

        info = pending.create_unwind_info(frame_id)
        for name, value in caller.items():
            if type(value) is int:
                value = self._value(pending, name, value)
                caller[name] = value
            info.add_saved_register(name, value)
        caller_bp = caller.get("rbp")
        self.carried[caller_key] = (
            None if caller_bp is None else int(caller_bp) & target.ULONG_MASK,
            caller_bp, invariants)
        return info

    def _outermost(self, pending, frame_id, pc, sp, caller_sp):
        """End of the kernel stack.  gdb 13's Python API cannot mark a frame
        outermost, and an unsaved pc makes `bt` fail, so the caller gets pc 0:
        gdb stops unwinding there, and the frame filter below hides it."""
        self.terminal.add((pc, sp))
        info = pending.create_unwind_info(frame_id)
        info.add_saved_register("rip", self._value(pending, "rip", 0))
        info.add_saved_register("rsp", self._value(pending, "rsp", caller_sp))
        return info

    def _read_pt_regs(self, pending, entry, cfa, pc, sp):
        layout = self._pt_regs_layout()
        if entry.kind == orc.REGS:
            base, partial = cfa, False
        else:
            base, partial = cfa - layout.offset["ip"], True
        data = self.stack.read(base, layout.size)
        values = {}
        members = PT_REGS_IRET if partial else PT_REGS_GPRS + PT_REGS_IRET
        for member, name in members:
            values[name] = target.unpack_u64(data, layout.offset[member])
        if not partial:
            values["orig_rax"] = target.unpack_u64(data, layout.offset["orig_ax"])
        for name in ("cs", "ss", "eflags"):
            values[name] &= 0xFFFFFFFF
        crossing = Crossing(base, partial, values, pc, sp)
        # orig_rax is not a register gdb unwinds; keep it for vbt only.
        crossing.orig_rax = values.pop("orig_rax", None)
        return crossing


class _Enabled(gdb.Parameter):
    """Whether the vmcore ORC unwinder is used for kernel frames.

`set vmcore-orc off` hands kernel frames back to gdb's DWARF unwinder
(which stops at exception entries); `set vmcore-orc on` restores it."""

    set_doc = "Set whether the vmcore ORC unwinder is used."
    show_doc = "Show whether the vmcore ORC unwinder is used."

    def __init__(self):
        super().__init__("vmcore-orc", gdb.COMMAND_STACK, gdb.PARAM_BOOLEAN)
        self.value = True

    def get_set_string(self):
        gdb.invalidate_cached_frames()
        return ""


class FrameLines(FrameDecorator):
    """What gdb's own FrameDecorator answers for a plain gdb.Frame, with the
    frame's type and symtab-and-line asked of gdb once instead of in every
    method.

    With any frame filter registered, `bt` prints every frame through these
    Python methods; FrameDecorator asks gdb for the frame's sal four times
    per frame and checks the wrapped object's attributes on every call.
    The arguments of a non-inline frame depend only on its function, so
    they are looked up once per (pc, function, source file) in args_memo
    (which the owner empties when symbols change)."""

    def __init__(self, frame, pc, args_memo):
        super().__init__(frame)
        self._frame = frame
        self._pc = pc
        self._args_memo = args_memo
        self._frame_type = None
        self._func = False       # not asked yet (gdb may answer None)
        self._sal = None
        self._is_limited = None

    def _function(self):
        if self._func is False:
            self._func = self._frame.function()
        return self._func

    def _type(self):
        if self._frame_type is None:
            self._frame_type = self._frame.type()
        return self._frame_type

    def _symtab_and_line(self):
        if self._sal is None:
            self._sal = self._frame.find_sal()
        return self._sal

    def _limited(self):
        """FrameDecorator._is_limited_frame: no source, or a dummy or
        signal frame."""
        if self._is_limited is None:
            symtab = self._symtab_and_line().symtab
            self._is_limited = (not symtab or not symtab.filename
                                or self._type() in (gdb.DUMMY_FRAME, gdb.SIGTRAMP_FRAME))
        return self._is_limited

    def elided(self):
        return None

    def function(self):
        frame_type = self._type()
        if frame_type == gdb.DUMMY_FRAME:
            return "<function called from gdb>"
        if frame_type == gdb.SIGTRAMP_FRAME:
            return "<signal handler called>"
        func = self._function()
        if func is None:
            return self._pc
        return str(func)

    def address(self):
        return self._pc

    def filename(self):
        symtab = self._symtab_and_line().symtab
        if not symtab or not symtab.filename:
            return gdb.solib_name(self._pc)
        return symtab.filename

    def frame_args(self):
        if self._limited():
            return None
        if self._type() != gdb.NORMAL_FRAME:
            return self._arguments()
        key = (self._pc, str(self._function()), self._symtab_and_line().symtab.filename)
        args = self._args_memo.get(key)
        if args is None:
            args = self._arguments()
            self._args_memo[key] = args
        return args

    def _arguments(self):
        """FrameVars.fetch_frame_args: the arguments of the frame's function."""
        try:
            block = self._frame.block()
        except RuntimeError:
            block = None
        while block is not None and block.function is None:
            block = block.superblock
        if block is None:
            return []
        args = []
        for sym in block:
            if not sym.is_argument:
                continue
            if sym.addr_class in _MI_PRINTED_ARG_CLASSES:
                args.append(SymValueWrapper(sym, None))
                continue
            try:
                args.append(NamedArg(sym.print_name, self._frame.read_var(sym, block)))
            except (gdb.error, ValueError, RuntimeError):
                args.append(SymValueWrapper(sym, None))
        return args

    def frame_locals(self):
        if self._limited():
            return None
        return FrameVars(self._frame).fetch_frame_locals()

    def line(self):
        if self._limited():
            return None
        sal = self._symtab_and_line()
        return sal.line if sal else None

    def inferior_frame(self):
        return self._frame


# gdb 13's MI argument lister (enumerate_args) loops forever on an argument symbol whose class
# MI does not print, such as an inlined function's parameter that was optimized out or made
# constant: `-stack-list-arguments` with frame filters on never returns. Such arguments go to
# gdb by name with their value (<optimized out>, or the constant), printed as before.
_MI_PRINTED_ARG_CLASSES = frozenset((
    gdb.SYMBOL_LOC_ARG, gdb.SYMBOL_LOC_REF_ARG, gdb.SYMBOL_LOC_REGPARM_ADDR, gdb.SYMBOL_LOC_LOCAL,
    gdb.SYMBOL_LOC_STATIC, gdb.SYMBOL_LOC_REGISTER, gdb.SYMBOL_LOC_COMPUTED))


class NamedArg:
    """A frame argument given to gdb as a name and a value, not a symbol."""

    def __init__(self, name, value):
        self._name = name
        self._value = value

    def symbol(self):
        return self._name

    def value(self):
        return self._value


class UnavailableFrame(FrameDecorator):
    """A frame whose pc is unavailable, printed as gdb's own `bt` prints
    it; FrameDecorator would ask for the pc and raise."""

    def function(self):
        return "<unavailable>"

    def address(self):
        return None

    def filename(self):
        return None

    def line(self):
        return None

    def frame_args(self):
        return None

    def frame_locals(self):
        return None


class HideEndMarker:
    """Frame filter: drops the pc-0 frame the unwinder puts after the
    outermost kernel frame, so `bt` ends at e.g. entry_SYSCALL_64.  Frames
    no other filter decorated are handed on as FrameLines (same text,
    printed faster)."""

    def __init__(self):
        self.name = "vmcore-orc-end"
        self.priority = 100
        self.enabled = True
        self.args_memo = {}
        gdb.frame_filters[self.name] = self
        for event in ("new_objfile", "clear_objfiles", "free_objfile"):
            if hasattr(gdb.events, event):
                getattr(gdb.events, event).connect(self.forget)

    def forget(self, _event=None):
        self.args_memo.clear()

    def filter(self, frames):
        return self._filter(frames, self.args_memo)

    @staticmethod
    def _filter(frames, args_memo):
        previous = None
        for decorator in frames:
            frame = decorator.inferior_frame()
            try:
                pc = frame.pc()
            except gdb.error:
                # No registers (a task that exited and gave back its stack): gdb
                # cannot unwind past this frame either.
                yield UnavailableFrame(frame)
                return
            if previous is not None and pc == 0 and _frame_key(previous) in UNWINDER.terminal:
                return
            previous = frame
            if type(decorator) is FrameDecorator and getattr(decorator, "_base", None) is frame:
                decorator = FrameLines(frame, pc, args_memo)
            yield decorator


def _frame_key(frame):
    try:
        return frame.pc(), int(frame.read_register("rsp")) & target.ULONG_MASK
    except (gdb.error, ValueError):
        return None


ENABLED = _Enabled()
UNWINDER = OrcUnwinder()
register_unwinder(None, UNWINDER, replace=True)
HideEndMarker()
gdb.invalidate_cached_frames()


# --- vbt ---------------------------------------------------------------------

def _stack_names():
    """[(lo, hi, name)] of the special stacks of every possible CPU:
    hard IRQ stacks and the IST exception stacks (NMI, #DF, #DB, #MC, #VC)."""
    names = []
    try:
        count = int(gdb.parse_and_eval("nr_cpu_ids"))
    except gdb.error:
        return names
    irq_ptr = target.symbol_address("hardirq_stack_ptr")
    irq_size = 0
    try:
        irq_size = target.lookup_type("struct irq_stack").sizeof
    except gdb.GdbError:
        pass
    cea = target.symbol_address("cea_exception_stacks")
    cea_fields = []
    try:
        cea_type = target.lookup_type("struct cea_exception_stacks")
        for field in cea_type.fields():
            if field.name.endswith("_stack") and "guard" not in field.name:
                cea_fields.append((field.name[:-6], field.bitpos // 8, field.type.sizeof))
    except gdb.GdbError:
        pass
    for cpu in range(min(count, 512)):
        try:
            if irq_ptr is not None and irq_size:
                # hardirq_stack_ptr points at the top of the stack (minus 8).
                top = target.read_u64(target.per_cpu_address(irq_ptr, cpu))
                if top:
                    hi = (top + 8) & ~0xFFF if (top + 8) & 0xFFF else top + 8
                    names.append((hi - irq_size, hi, "IRQ stack"))
            if cea is not None and cea_fields:
                base = target.read_u64(target.per_cpu_address(cea, cpu))
                if base:
                    for name, offset, size in cea_fields:
                        names.append((base + offset, base + offset + size,
                                      "%s exception stack" % name))
        except (gdb.MemoryError, gdb.GdbError):
            continue
    return names


def _stack_name(stacks, sp):
    for lo, hi, name in stacks:
        if lo <= sp < hi:
            return name
    return None


def _symbolize(pc):
    try:
        text = gdb.execute("info symbol 0x%x" % pc, to_string=True).strip()
    except gdb.error:
        return None
    if text.startswith("No symbol"):
        return None
    name = text.split(" in section")[0]
    return name.replace(" + ", "+")


def _cr2_for(thread_frame0):
    """CR2 of the page fault: the CPU's cr2 register if the target has it,
    else the address the oops printed (searched in the printk buffer)."""
    if target.is_cpu_thread():
        try:
            value = thread_frame0.read_register("cr2")
            if not value.is_optimized_out:
                return int(value) & target.ULONG_MASK, "cr2 register"
        except (gdb.error, ValueError):
            pass
    address = _cr2_from_log()
    if address is not None:
        return address, "oops message"
    return None, None


def _cr2_from_log():
    """Last 'address: <hex>' printed by a page-fault oops, found in the
    printk ring buffer's text (6.1+: prb->text_data_ring)."""
    try:
        prb = gdb.parse_and_eval("prb").dereference()
        ring = prb["text_data_ring"]
        size = 1 << int(ring["size_bits"])
        data = target.read(target.ulong(ring["data"]), size)
    except (gdb.error, gdb.MemoryError):
        return None
    best = None
    for marker in (b"BUG: unable to handle page fault for address: ",
                   b"BUG: kernel NULL pointer dereference, address: "):
        at = data.rfind(marker)
        if at >= 0 and (best is None or at > best[0]):
            best = (at, at + len(marker))
    if best is None:
        return None
    text = data[best[1]:best[1] + 16].split(b"\n")[0]
    try:
        return int(text, 16)
    except ValueError:
        return None


def _format_crossing(crossing, cr2):
    v = crossing.values
    lines = []
    if not crossing.user_mode:
        where = _symbolize(v["rip"]) or "0x%x" % v["rip"]
        lines.append("[exception RIP: %s]" % where)
    row = ["RIP: %016x" % v["rip"], "RSP: %016x" % v["rsp"], "RFLAGS: %08x" % v["eflags"]]
    lines.append("  ".join(row))
    if not crossing.partial:
        gprs = [(name.upper(), v[name]) for _m, name in PT_REGS_GPRS]
        for i in range(0, len(gprs), 3):
            lines.append("  ".join("%s: %016x" % g for g in gprs[i:i + 3]))
        lines.append("ORIG_RAX: %016x  CS: %04x  SS: %04x"
                     % (crossing.orig_rax & target.ULONG_MASK, v["cs"], v["ss"]))
    else:
        lines.append("CS: %04x  SS: %04x  (iret frame only: other registers as above)"
                     % (v["cs"], v["ss"]))
    if cr2 is not None:
        lines.append("CR2: %016x  (from the %s)" % cr2)
    return ["    " + line for line in lines]


def _symbolize_return(pc):
    """name+offset of a return address, looked up at pc-1 so that a call
    at the very end of a function (to a noreturn callee) names the caller."""
    symbol = _symbolize(pc - 1)
    if symbol is None:
        return None
    name, _, offset = symbol.partition("+")
    return "%s+%d" % (name, (int(offset) if offset else 0) + 1)


def _frame_line(frame, level, exact):
    pc = frame.pc()
    name = frame.name()
    func = "??"
    if name:
        symbol = None
        if frame.type() != gdb.INLINE_FRAME:
            symbol = _symbolize(pc) if exact else _symbolize_return(pc)
        func = symbol if symbol and symbol.split("+")[0] == name else name
    text = "#%-3d" % level
    if frame.type() == gdb.INLINE_FRAME:
        text += "%18s in %s" % ("", func)
    else:
        text += "0x%016x in %s" % (pc, func)
    sal = frame.find_sal()
    if sal.symtab is not None:
        text += " at %s:%d" % (sal.symtab.filename, sal.line)
    return text


class VBacktrace(gdb.Command):
    """Kernel backtrace that shows every exception, interrupt and syscall crossing.

Usage: vbt [-a] [N]

Prints the selected thread's frames like `bt` (the ORC unwinder makes plain
`bt` cross the same frames), with each frame's stack pointer, and after each
entry frame that saved a struct pt_regs a block in crash's style:
    [exception RIP: __free_pages+5]
    RIP, RSP, RFLAGS, the general registers, ORIG_RAX, CS, SS
    CR2 (page faults: the CPU's cr2, else the address from the oops)
A line `--- <NMI exception stack> ---` marks where the unwind leaves an IRQ
or IST stack.  The unwind ends at the user-mode pt_regs of a syscall.
N limits the number of frames; -a does every CPU thread."""

    def __init__(self):
        super().__init__("vbt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        all_cpus = "-a" in argv
        argv = [a for a in argv if a != "-a"]
        limit = int(argv[0]) if argv else 10000
        if not all_cpus:
            self._one(limit)
            return
        selected = gdb.selected_thread()
        try:
            # Highest number first, like `thread apply all`; gdb 13 returns
            # threads() in no stable order.
            for thread in sorted(gdb.selected_inferior().threads(), key=lambda t: t.num,
                                 reverse=True):
                if not target.is_cpu_thread(thread):
                    continue
                thread.switch()
                gdb.write("\nThread %d (%s):\n" % (thread.num, thread.name or thread.details or ""))
                self._one(limit)
        finally:
            selected.switch()

    def _one(self, limit):
        stacks = _stack_names()
        frame = gdb.newest_frame()
        frame0 = frame
        level = 0
        previous_stack = None
        while frame is not None and level < limit:
            inline = frame.type() == gdb.INLINE_FRAME
            try:
                # An inline frame shares the registers of the real frame it
                # sits in, so its rsp names the stack it runs on.
                sp = int(frame.read_register("rsp")) & target.ULONG_MASK
            except (gdb.error, ValueError):
                sp = None
            stack = _stack_name(stacks, sp) if sp is not None else previous_stack
            if level and stack != previous_stack and previous_stack is not None:
                gdb.write("--- <%s> ---\n" % previous_stack)
            previous_stack = stack
            exact = level == 0 or (frame.pc(), sp) in UNWINDER.exact_pcs
            line = _frame_line(frame, level, exact)
            if sp is not None and not inline:
                line = "%s  [rsp %016x]" % (line, sp)
            gdb.write(line + "\n")
            if sp is not None and not inline:
                crossing = UNWINDER.crossings.get((frame.pc(), sp))
                if crossing is not None:
                    cr2 = None
                    if (frame.name() or "").startswith("asm_exc_page_fault"):
                        cr2 = _cr2_for(frame0)
                        if cr2[0] is None:
                            cr2 = None
                    for text in _format_crossing(crossing, cr2):
                        gdb.write(text + "\n")
            if sp is not None and not inline and (frame.pc(), sp) in UNWINDER.terminal:
                break
            try:
                frame = frame.older()
            except gdb.error as err:
                gdb.write("Backtrace stopped: %s\n" % err)
                return
            level += 1


VBacktrace()
