"""The ORC unwinder and `vbt` (gdbscripts/vmcore/unwind.py) through real gdb on real sample
dumps served by vmcore-gdbserver, compared with crash's `bt -a` on the same dump and with
the ground truth of each scenario."""
import re
import subprocess

import pytest

from gdbscripts_common import frame_functions, run_sections

SCENARIOS = ("sysrq", "busy", "null-page", "virtio-bug", "slab-double-free")


def normalize(name):
    """crash prints compiler clones and entry labels by their ELF symbol; gdb by DWARF name."""
    name = re.sub(r"\.(cold|isra|constprop|part|lto_priv)(\.\d+)*$", "", name)
    name = re.sub(r"\.(isra|constprop|part)\.\d+.*$", "", name)
    if name.startswith("entry_SYSCALL_64"):
        return "entry_SYSCALL_64"
    return name


CRASH_TASK_RE = re.compile(r"^PID: \d+\s+TASK: ([0-9a-f]+)\s+CPU: (\d+)", re.M)
CRASH_FRAME_RE = re.compile(r"^\s*#(\d+) \[[0-9a-f]+\] (\S+) at ([0-9a-f]+)", re.M)


def crash_bt_all(vmlinux, files):
    """{cpu: (frames, text)} from crash's `bt -a`; frames are (name, has_regs_block_after)."""
    r = subprocess.run(["crash", "-s", vmlinux] + list(files), input="bt -a\nquit\n",
                       capture_output=True, text=True, timeout=900)
    out = {}
    blocks = CRASH_TASK_RE.split(r.stdout)
    for i in range(1, len(blocks) - 2, 3):
        cpu, text = int(blocks[i + 1]), blocks[i + 2]
        frames = []
        for m in CRASH_FRAME_RE.finditer(text):
            rest = text[m.end():].split("\n #", 1)[0].split("\n#", 1)[0]
            frames.append((normalize(m.group(2)), "RIP:" in rest, int(m.group(3), 16)))
        out[cpu] = (frames, text)
    assert out, f"crash printed no backtrace:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return out


def real_callers(frames, capture, is_panic_cpu):
    """The crash frames that are callers of the context in the dump's registers.

    Left out, each for a stated reason:
      * kdump, panic CPU, frame #0 machine_kexec: crash shows the function running at
        kexec time; the saved registers are crash_setup_regs() in __crash_kexec, its caller.
      * kdump, other CPUs, frames above the NMI's pt_regs block: NT_PRSTATUS holds the
        interrupted context (crash_nmi_callback saves the NMI regs), not the handler's.
      * frames crash lists between do_syscall_64 and entry_SYSCALL_64: that entry calls
        do_syscall_64 directly, so anything in between is a stale stack word crash's
        scan picked up.
    """
    if capture == "kdump" and is_panic_cpu and frames and frames[0][0] == "machine_kexec":
        frames = frames[1:]
    if capture == "kdump" and not is_panic_cpu:
        for i, (_, regs, _) in enumerate(frames):
            if regs:
                frames = frames[i + 1:]
                break
    names = [name for name, _, _ in frames]
    if "do_syscall_64" in names and "entry_SYSCALL_64" in names:
        a, b = names.index("do_syscall_64"), names.index("entry_SYSCALL_64")
        if a < b:
            frames = frames[:a + 1] + frames[b:]
    return [(name, address) for name, _, address in frames]


def dumps_for(samples, scenario):
    out = []
    for capture in ("kdump", "qemu"):
        found = samples.dumps(scenario=scenario, capture=capture, format="elf")
        if found:
            out.append(found[0])
    if not out:
        pytest.skip(f"no {scenario} dump in the samples yet")
    return out


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_bt_has_every_caller_crash_finds(samples, scenario):
    for dump in dumps_for(samples, scenario):
        truth = samples.truth(dump)
        ncpu = truth["nr_cpus"]
        sections = [(f"cpu{c}", [f"thread {c + 1}", "bt"]) for c in range(ncpu)]
        ours = run_sections(samples, dump, sections)
        theirs = crash_bt_all(samples.vmlinux, dump["files"])
        for cpu in range(ncpu):
            if cpu not in theirs:
                continue
            got = [normalize(n) for n in frame_functions(ours[f"cpu{cpu}"])]
            pcs = {int(a, 16) for a in re.findall(r"^#\d+\s+0x([0-9a-f]+) in ", ours[f"cpu{cpu}"], re.M)}
            assert "Backtrace stopped" not in ours[f"cpu{cpu}"], ours[f"cpu{cpu}"]
            want = real_callers(theirs[cpu][0], dump["capture"], cpu == truth["panic_cpu"])
            # Same frame if the name matches or, for labels inside an entry function
            # (crash: end_repeat_nmi, gdb: asm_exc_nmi), the address does.
            missing = [n for n, address in want if n not in got and address not in pcs]
            assert not missing, (f"{dump['id']} CPU {cpu}: crash lists {missing} that our bt "
                                 f"lacks\ncrash:\n{theirs[cpu][1]}\nours:\n{ours[f'cpu{cpu}']}")


def test_syscall_path_ends_at_user_pt_regs(samples):
    dump = samples.dump(scenario="sysrq", capture="kdump", format="elf")
    truth = samples.truth(dump)
    out = run_sections(samples, dump, [("bt", [f"thread {truth['panic_cpu'] + 1}", "bt"]),
                                       ("vbt", ["vbt"])])
    names = frame_functions(out["bt"])
    assert names[-1] == "entry_SYSCALL_64", out["bt"]
    for fn in ("panic", "sysrq_handle_crash", "write_sysrq_trigger", "vfs_write", "ksys_write",
               "do_syscall_64"):
        assert fn in names, out["bt"]
    assert "0x0000000000000000 in" not in out["bt"], out["bt"]
    # vbt prints the user-mode registers the syscall saved, and stops there.
    assert re.search(r"CS: 0033\s+SS: 002b", out["vbt"]), out["vbt"]
    assert re.search(r"ORIG_RAX: 0000000000000001", out["vbt"]), out["vbt"]  # write(2)
    assert frame_functions(out["vbt"])[-1] == "entry_SYSCALL_64"


def test_other_cpus_cross_the_nmi_stack(samples):
    """QEMU captures hold each CPU's real state: the other CPUs sit in the NMI handler
    (crash_nmi_callback) on the NMI IST stack; the unwind must leave it through the NMI
    pt_regs into what the CPU was running."""
    dump = samples.dump(scenario="busy", capture="qemu", format="elf")
    truth = samples.truth(dump)
    others = [c for c in range(truth["nr_cpus"]) if c != truth["panic_cpu"]]
    out = run_sections(samples, dump, [(f"cpu{c}", [f"thread {c + 1}", "vbt"]) for c in others])
    for c in others:
        text = out[f"cpu{c}"]
        names = frame_functions(text)
        assert "crash_nmi_callback" in names and "asm_exc_nmi" in names, text
        assert "RIP:" in text, text           # the NMI's pt_regs, printed by vbt
        regs_at = text.index("RIP:")
        user = re.search(r"CS: 0033", text[regs_at:]) is not None
        # Either the CPU was in user space (the block says so) or kernel frames follow.
        assert user or len(frame_functions(text[regs_at:])) > 0, text


def test_sleeping_tasks_unwind_from_schedule(samples):
    dump = samples.dump(scenario="busy", capture="kdump", format="elf")
    truth = samples.truth(dump)
    first = truth["nr_cpus"] + 1
    out = run_sections(samples, dump, [("bts", [f"thread apply {first}-{first + 80} bt"])],
                       extra_args=("--tasks=all",))
    per_thread = re.split(r"^\nThread \d+ ", out["bts"], flags=re.M)[1:]
    assert len(per_thread) > 40, out["bts"][-2000:]
    checked = 0
    for text in per_thread:
        header = text.splitlines()[0]
        if "sleeping" not in header and "idle" not in header:
            continue
        names = frame_functions(text)
        assert "__schedule" in names[:3], text
        assert names[-1] in ("ret_from_fork", "entry_SYSCALL_64"), text
        assert "Backtrace stopped" not in text and "??" not in text, text
        checked += 1
    assert checked > 20


def exception_dumps(samples, scenario):
    found = [d for capture in ("kdump", "qemu")
             for d in samples.dumps(scenario=scenario, capture=capture, format="elf")[:1]]
    if not found:
        pytest.skip(f"no {scenario} dump in the samples yet")
    return found


def crossing_registers(text):
    """(RIP, RSP) of the first [exception RIP: ...] block of vbt output."""
    block = text[text.index("[exception RIP:"):]
    m = re.search(r"RIP: ([0-9a-f]{16})\s+RSP: ([0-9a-f]{16})", block)
    assert m, block
    return int(m.group(1), 16), int(m.group(2), 16)


def test_null_page_shows_page_fault_frame_and_cr2(samples):
    """kdump capture: CR2 comes from the oops message; QEMU capture: from the CPU's cr2."""
    for dump in exception_dumps(samples, "null-page"):
        truth = samples.truth(dump)
        out = run_sections(samples, dump, [("vbt", [f"thread {truth['panic_cpu'] + 1}", "vbt"])])
        text = out["vbt"]
        assert "asm_exc_page_fault" in text, text
        assert "[exception RIP: __free_pages+" in text, text
        assert crossing_registers(text) == (int(truth["oops_rip"], 16), int(truth["oops_sp"], 16))
        m = re.search(r"CR2: ([0-9a-f]{16})  \(from the (cr2 register|oops message)\)", text)
        assert m, text
        assert int(m.group(1), 16) == int(truth["oops_cr2"], 16)
        assert m.group(2) == ("cr2 register" if dump["capture"] == "qemu" else "oops message")
        after = text[text.index("[exception RIP:"):]
        names = frame_functions(after)
        assert names[0] == "__free_pages", after
        # The scenario module's caller at the return address the module recorded, then the
        # path up to the syscall.
        assert names[1] == truth["caller_function"], after
        assert re.search(r"^#\d+\s+0x%016x in %s" % (int(truth["caller_return_address"], 16),
                                                      truth["caller_function"]), after, re.M), after
        assert names[-1] == "entry_SYSCALL_64", after


@pytest.mark.parametrize("scenario,entry", [("virtio-bug", "asm_exc_invalid_op"),
                                            ("slab-double-free", "asm_exc_general_protection")])
def test_bug_reaches_the_crash_site(samples, scenario, entry):
    dump = exception_dumps(samples, scenario)[0]
    truth = samples.truth(dump)
    out = run_sections(samples, dump, [("vbt", [f"thread {truth['panic_cpu'] + 1}", "vbt"]),
                                       ("bt", ["bt"])])
    assert entry in out["vbt"], out["vbt"]
    assert crossing_registers(out["vbt"]) == (int(truth["oops_rip"], 16),
                                              int(truth["oops_sp"], 16))
    symbol = truth["oops_rip_symbol"].split("+")[0]
    assert f"[exception RIP: {symbol}+" in out["vbt"], out["vbt"]
    after = out["vbt"][out["vbt"].index("[exception RIP: "):]
    assert frame_functions(after)[-1] == "entry_SYSCALL_64", after
    assert "Backtrace stopped" not in out["bt"], out["bt"]
    # Plain bt crosses the same exception frame, down to the same syscall entry.
    assert symbol in frame_functions(out["bt"]), out["bt"]
    assert frame_functions(out["bt"])[-1] == "entry_SYSCALL_64", out["bt"]


def test_mi_lists_arguments_through_the_frame_filter(samples):
    """An IDE that turns on frame filters and asks for every frame's arguments gets an answer:
    gdb 13's MI lister loops forever on an inlined function's optimized-out parameter unless our
    filter hands such arguments over by name (the sysrq path has pde_write inlined)."""
    from gdbscripts_common import SOURCE, pick
    from gdbtest import GDB_INDEX_ARGS, stdio_target

    dump = pick(samples, "sysrq")
    cmds = ["-enable-frame-filters", "-stack-list-frames", "-stack-list-arguments 1",
            '-interpreter-exec console "bt"', "-gdb-exit"]
    p = subprocess.run(["gdb", "--interpreter=mi3", "-nx", "-q"] + GDB_INDEX_ARGS +
                       [samples.vmlinux, "-ex", "target remote " + stdio_target(dump["files"], "--tasks=none"),
                        "-ex", SOURCE],
                       input="\n".join(cmds) + "\n", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=120)
    out = p.stdout
    assert p.returncode == 0 and "internal-error" not in out, out[-3000:]
    frames = re.search(r"^\^done,stack=\[(.*)\]$", out, re.M)
    args = re.search(r"^\^done,stack-args=\[(.*)\]$", out, re.M)
    assert frames and args, out[-3000:]
    levels = re.findall(r'frame=\{level="(\d+)"', frames.group(1))
    assert levels and re.findall(r'frame=\{level="(\d+)"', args.group(1)) == levels
    cli = [m.group(2) for m in re.finditer(r'^~"#(\d+)\s+(.*)$', out, re.M)]
    assert len(cli) == len(levels), out[-3000:]
    # Every argument the CLI prints as optimized out is listed, with that value, by MI too.
    for m in re.finditer(r"(\w+)=<optimized out>", "\n".join(cli)):
        assert '{name="%s",value="<optimized out>"}' % m.group(1) in args.group(1)
