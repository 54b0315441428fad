"""vmcore-setup (gdbscripts/vmcore/setup.py) through real gdb on real sample dumps served by
vmcore-gdbserver: KASLR relocation of every vmlinux section but the zero-based per-CPU one,
module debug info at the load addresses, idempotence, and both loading orders."""
import re

from gdbscripts_common import SOURCE, run_sections

LINK_TEXT = 0xffffffff81000000


def kaslr_offset(text):
    m = re.search(r"(?:kaslr_offset|KERNELOFFSET)[ =](0x[0-9a-f]+)", text)
    assert m, f"monitor kaslr printed no offset:\n{text}"
    return int(m.group(1), 16)


def value_of(text):
    """The value of the last `$N = VALUE` line."""
    found = re.findall(r"^\$\d+ = (.*)$", text, re.M)
    assert found, f"no value printed:\n{text}"
    return found[-1].strip()


SECTION_CHECKS = [
    ("text", "schedule", ".text"),
    ("rodata", "linux_banner", ".rodata"),
    ("data", "init_task", ".data"),
    ("bss", "saved_command_line", ".bss"),
    ("init", "start_kernel", ".init.text"),
]


def test_setup_relocates_every_section_and_keeps_percpu_zero_based(samples):
    dump = samples.dump(scenario="sysrq", capture="kdump", format="elf")
    truth = samples.truth(dump)
    cpu = truth["cpu_current"][-1]
    sections = [("kaslr", ["monitor kaslr"]), ("text_addr", ["p/x (unsigned long)&_text"])]
    for name, sym, _ in SECTION_CHECKS:
        sections.append((f"sym_{name}", [f"info symbol (unsigned long)&{sym}"]))
    sections += [
        ("banner", ["x/s &linux_banner"]),
        ("init_comm", ["p init_task.comm"]),
        ("cmdline", ["x/s saved_command_line"]),
        ("max_pfn", ["p max_pfn"]),
        ("percpu_addr", ["p/x (unsigned long)&current_task"]),
        ("percpu_offset", [f"p/x __per_cpu_offset[{cpu['cpu']}]"]),
        ("current_pid", ["p ((struct task_struct *)*(unsigned long *)((unsigned long)&current_task"
                         f" + __per_cpu_offset[{cpu['cpu']}]))->pid"]),
    ]
    out = run_sections(samples, dump, sections)
    assert "relocated by KASLR offset" in out["_connect"], out["_connect"]
    offset = kaslr_offset(out["kaslr"])
    assert int(value_of(out["text_addr"]), 16) == LINK_TEXT + offset
    for name, sym, section in SECTION_CHECKS:
        assert re.search(rf"^{sym} in section {re.escape(section)}\b", out[f"sym_{name}"], re.M), \
            out[f"sym_{name}"]
    assert "Linux version 6.1.0" in out["banner"]
    assert '"swapper/0' in out["init_comm"]
    assert "console=" in out["cmdline"]
    assert int(value_of(out["max_pfn"])) > 0
    # Per-CPU symbols are offsets into the per-CPU area, not shifted by KASLR.
    assert int(value_of(out["percpu_addr"]), 16) < 0x100000
    assert int(value_of(out["percpu_offset"]), 16) == int(cpu["per_cpu_offset"], 16)
    assert int(value_of(out["current_pid"])) == cpu["pid"]


def test_modules_load_at_their_addresses_and_setup_is_idempotent(samples):
    dump = samples.dump(scenario="sysrq", capture="kdump", format="elf")
    check_module = (
        "python\n"
        "from vmcore import target\n"
        "for m in target.kernel_modules():\n"
        "    if m.name == 'virtio_blk':\n"
        "        lo, hi = m.text[0]\n"
        "        a = int(gdb.parse_and_eval('(unsigned long)&virtblk_probe'))\n"
        "        print('MODCHECK', lo <= a < hi, hex(lo), hex(a))\n"
        "end")
    sections = [
        ("line_virtio", ["info line virtblk_probe"]),
        ("line_truth", ["info line vmgs_truth_panic"]),
        ("sym_module", ["info symbol (unsigned long)&virtblk_probe"]),
        ("code_module", ["x/i (unsigned long)&virtblk_probe"]),
        ("modcheck", [check_module]),
        ("objfiles_before", ["python print('OBJFILES', len(gdb.objfiles()))"]),
        ("text_before", ["p/x (unsigned long)&_text"]),
        ("again", ["vmcore-setup"]),
        ("objfiles_after", ["python print('OBJFILES', len(gdb.objfiles()))"]),
        ("text_after", ["p/x (unsigned long)&_text"]),
        ("percpu_after", ["p/x (unsigned long)&current_task"]),
    ]
    out = run_sections(samples, dump, sections)
    assert re.search(r"modules: \d+ with debug info", out["_connect"]), out["_connect"]
    assert re.search(r'Line \d+ of "[^"]*virtio_blk\.c" starts at address 0xffffffff[a-f0-9]+ <virtblk_probe',
                     out["line_virtio"]), out["line_virtio"]
    assert re.search(r'Line \d+ of "[^"]*vmgs_truth\.c"', out["line_truth"]), out["line_truth"]
    assert re.search(r"virtblk_probe in section \.text of .*virtio_blk\.ko", out["sym_module"]), \
        out["sym_module"]
    assert "Cannot access memory" not in out["code_module"], out["code_module"]
    assert "MODCHECK True" in out["modcheck"], out["modcheck"]
    # A second run finds nothing to do and changes nothing.
    assert "already at KASLR offset" in out["again"], out["again"]
    assert re.search(r"modules: \d+ already loaded", out["again"]), out["again"]
    assert out["objfiles_before"].split("OBJFILES")[1].split()[0] == \
        out["objfiles_after"].split("OBJFILES")[1].split()[0]
    assert value_of(out["text_before"]) == value_of(out["text_after"])
    assert int(value_of(out["percpu_after"]), 16) < 0x100000


def test_setup_runs_when_sourced_before_target_remote(samples):
    dump = samples.dump(scenario="sysrq", capture="kdump", format="kdump")
    out = run_sections(samples, dump, [("kaslr", ["monitor kaslr"]), ("text", ["p/x (unsigned long)&_text"]),
                              ("banner", ["x/s &linux_banner"])],
                       before=(SOURCE,), after_connect=())
    assert "relocated by KASLR offset" in out["_all"], out["_all"][-3000:]
    assert int(value_of(out["text"]), 16) == LINK_TEXT + kaslr_offset(out["kaslr"])
    assert "Linux version 6.1.0" in out["banner"]


def test_banner_scan_finds_the_same_offset_as_monitor_kaslr(samples):
    """The fallback for targets without `monitor kaslr` (e.g. QEMU's gdbstub), run on a dump."""
    dump = samples.dump(scenario="sysrq", capture="qemu", format="elf")
    scan = ("python\n"
            "from vmcore import setup\n"
            "off = setup.kaslr_from_monitor()\n"
            "link = int(gdb.parse_and_eval('(unsigned long)&linux_banner')) - off\n"
            "print('SCAN', hex(setup.kaslr_from_banner(link)), hex(off))\n"
            "end")
    out = run_sections(samples, dump, [("scan", [scan])])
    m = re.search(r"SCAN (0x[0-9a-f]+) (0x[0-9a-f]+)", out["scan"])
    assert m, out["scan"]
    assert m.group(1) == m.group(2)


def test_modules_without_a_file_are_reported(samples, monkeypatch, tmp_path):
    dump = samples.dump(scenario="sysrq", capture="kdump", format="elf")
    # Without the samples cache, the scenario module (only there) has no file.
    monkeypatch.setenv("VMCORE_GDBSERVER_CACHE", str(tmp_path))
    out = run_sections(samples, dump, [("none", ["echo"])],
                       extra_args=("--tasks=none", "--vmlinux", samples.vmlinux))
    assert re.search(r"no \.ko file found for \d+ module\(s\): .*vmgs_truth", out["_connect"]), \
        out["_connect"]


def test_every_command_has_help(samples):
    dump = samples.dump(scenario="sysrq", capture="kdump", format="elf")
    out = run_sections(samples, dump, [("h1", ["help vmcore-setup"]), ("h2", ["help vbt"]),
                              ("h3", ["help vmcore"]), ("h4", ["help set vmcore-orc"])],
                       extra_args=("--tasks=none",))
    assert "KASLR" in out["h1"]
    assert "exception" in out["h2"]
    assert "vmcore-setup" in out["h3"]
    assert "ORC" in out["h4"]
