"""vmcore-gdbserver through a real gdb 13 on the real sample dumps, checked against the
ground truth the scenario module printed from the live kernel before the crash."""
import hashlib
import os
import re
import socket
import subprocess

import pytest

from gdbtest import GDB_INDEX_ARGS, Server, gdb_batch, kaslr_setup, server_binary, stdio_target


def pick(samples, scenario, **match):
    """A compressed dump of the scenario if there is one (smaller and faster to hash)."""
    for fmt in ("kdump", "elf"):
        found = samples.dumps(scenario=scenario, format=fmt, **match)
        if found:
            return found[0]
    return samples.dump(scenario=scenario, **match)


THREAD_RE = re.compile(r'^[ *]\s*(\d+)\s+Thread (\d+) "([^"]*)" \(([^)]*)\)', re.M)


def threads_of(out):
    """[(gdb number, tid, name, extra)] from `info threads`."""
    return [(int(n), int(t), name, extra) for n, t, name, extra in THREAD_RE.findall(out)]


def test_cpu_threads_first_and_list_stable(samples):
    dump = pick(samples, "sysrq")
    truth = samples.truth(dump)
    out = gdb_batch(stdio_target(dump["files"]), ["info threads", "info threads", "thread"])
    first, second = out.split("  Id   Target Id")[1:3]
    assert threads_of(first) == threads_of(second)
    threads = threads_of(first)
    ncpu = truth["nr_cpus"]
    for i in range(ncpu):
        assert threads[i][0] == i + 1 and threads[i][2].startswith(f"CPU#{i}"), threads[i]
    assert f"CPU#{truth['panic_cpu']} [panic]" == threads[truth["panic_cpu"]][2]
    # `?` names the panicking CPU, so gdb selects it without renumbering.
    assert f"Current thread is {truth['panic_cpu'] + 1} " in out
    tasks = {(int(name.split()[0]), name.split(None, 1)[1]) for _, _, name, _ in threads[ncpu:]}
    assert (truth["pid"], truth["comm"]) in tasks


@pytest.mark.parametrize("size", ["first", "most tasks"])
def test_info_threads_matches_every_task(samples, size):
    """The first busy run (a few hundred tasks) and the one with the most (a few thousand)."""
    scenarios = samples.manifest["scenarios"]
    runs = [r for r, s in scenarios.items() if s["scenario"] == "busy" and "tasks" in s["truth"]]
    if not runs:
        pytest.skip("no busy run whose truth lists the tasks")
    run = runs[0] if size == "first" else max(runs, key=lambda r: len(scenarios[r]["truth"]["tasks"]))
    if size != "first" and run == runs[0]:
        pytest.skip("no busy run with more tasks than " + run)
    dump = pick(samples, "busy", run=run)
    truth = samples.truth(dump)
    out = gdb_batch(stdio_target(dump["files"]), ["info threads"])
    threads = threads_of(out)[truth["nr_cpus"]:]
    shown = {}
    for _, _, name, extra in threads:
        pid, comm = name.split(" ", 1)
        shown[int(pid)] = (comm, extra[0])
    for t in truth["tasks"]:
        assert t["pid"] in shown, f"task {t} missing"
        comm, state = shown[t["pid"]]
        assert comm == t["comm"][:15]
        assert state == t["state"], f"task {t}: shown {shown[t['pid']]}"


def test_panic_backtrace_shows_sysrq_chain(samples):
    dump = pick(samples, "sysrq")
    truth = samples.truth(dump)
    out = gdb_batch(stdio_target(dump["files"]), kaslr_setup(samples.vmlinux) + ["thread", "bt"])
    assert f"Current thread is {truth['panic_cpu'] + 1} " in out
    for fn in ("panic", "sysrq_handle_crash", "__handle_sysrq", "write_sysrq_trigger"):
        assert re.search(rf"#\d+ .*\b{fn} \(", out), f"{fn} not in backtrace:\n{out}"


def test_gs_base_is_per_cpu_offset_and_current_task(samples):
    dump = pick(samples, "sysrq")
    truth = samples.truth(dump)
    cmds = list(kaslr_setup(samples.vmlinux))
    for cpu in range(truth["nr_cpus"]):
        cmds += [f"thread {cpu + 1}", "p/x $gs_base", f"p/x __per_cpu_offset[{cpu}]",
                 "p ((struct task_struct *)*(unsigned long *)((char *)&current_task + $gs_base))->pid",
                 "p ((struct task_struct *)*(unsigned long *)((char *)&current_task + $gs_base))->comm"]
    out = gdb_batch(stdio_target(dump["files"]), cmds)
    values = re.findall(r"^\$\d+ = (.*)$", out, re.M)
    assert len(values) == 4 * truth["nr_cpus"], out
    by_cpu = {c["cpu"]: c for c in truth.get("cpu_current", [])}
    for cpu in range(truth["nr_cpus"]):
        gs, offset, pid, comm = values[4 * cpu:4 * cpu + 4]
        assert gs == offset, f"CPU {cpu}: $gs_base {gs} != __per_cpu_offset {offset}"
        if cpu in by_cpu:
            assert int(gs, 16) == int(by_cpu[cpu]["per_cpu_offset"], 16)
            assert int(pid) == by_cpu[cpu]["pid"]
            assert comm.startswith(f'"{by_cpu[cpu]["comm"]}')


def test_kernel_globals(samples):
    dump = pick(samples, "sysrq")
    out = gdb_batch(stdio_target(dump["files"]), kaslr_setup(samples.vmlinux) +
                    ["x/s linux_banner", "p jiffies", "p init_task.comm", "p $cr3"])
    assert re.search(rf'<linux_banner>:\s+"Linux version {re.escape(samples.manifest["release"])} ', out), out
    assert re.search(r"^\$1 = \d{4,}$", out, re.M), out
    assert '$2 = "swapper/0' in out
    if dump["capture"] == "kdump":  # NT_PRSTATUS has no control registers: unknown, not zero
        assert "$3 = <unavailable>" in out, out


def test_control_registers_from_qemu_notes(samples):
    dump = pick(samples, "sysrq", capture="qemu")
    out = gdb_batch(stdio_target(dump["files"]), ["p/x $cr3", "p $cr4", "p $efer"])
    assert re.search(r"^\$1 = 0x[0-9a-f]{4,}$", out, re.M), out  # page-table root (+ PCID bits)
    assert "PAE" in out and "PGE" in out
    assert "$3 = <unavailable>" in out  # QEMU's CPU note has no EFER: unknown, not zero


def test_thread_apply_all_bt_ends_and_sleepers_are_in_schedule(samples):
    dump = pick(samples, "sysrq")
    out = gdb_batch(stdio_target(dump["files"]), kaslr_setup(samples.vmlinux) +
                    ["info threads", "thread apply all bt 40"], timeout=600)
    threads = threads_of(out)
    assert threads
    sections = re.split(r"^Thread (\d+) \(Thread \d+ ", out, flags=re.M)
    bts = {int(sections[i]): sections[i + 1] for i in range(1, len(sections) - 1, 2)}
    assert set(bts) == {n for n, *_ in threads}
    sleepers = [n for n, _, _, extra in threads if extra[:1] in ("S", "D", "I")]
    assert sleepers
    for n in sleepers:
        assert re.search(r"\b(__schedule|schedule)\b", bts[n]), f"thread {n}:\n{bts[n]}"


def test_writes_refused_and_dump_unchanged(samples):
    dump = pick(samples, "sysrq")

    def digest():
        h = hashlib.sha256()
        for path in dump["files"]:
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        return h.hexdigest()

    before = digest()
    out = gdb_batch(stdio_target(dump["files"]), kaslr_setup(samples.vmlinux) +
                    ["set var jiffies = 0", "set {char}linux_banner = 65", "set var $rax = 1",
                     "maint packet Z0,ffffffff81000000,1", "maint packet Z2,ffffffff81000000,8",
                     "continue", "x/s linux_banner"])
    assert out.count("Cannot access memory at address") == 2, out
    assert "Could not write register \"rax\"; remote failure reply 'E03'" in out, out
    assert out.count('received: "E03"') == 2, out  # breakpoint and watchpoint refused
    assert "received signal SIGTRAP" in out  # continue answers at once with a stop
    assert '"Linux version' in out  # unchanged, and the session survived the refusals
    assert digest() == before


def first_excluded_phys(samples, dump):
    """Physical address of the first page a dump-level-31 dump left out, found through gdb."""
    scan = ("python\n"
            "import gdb\n"
            "gdb.selected_inferior().connection.send_packet('Qqemu.PhyMemMode:1')\n"
            "inf = gdb.selected_inferior()\n"
            "for pa in range(0x100000, 0x10000000, 0x1000):\n"
            "    try:\n"
            "        inf.read_memory(pa, 8)\n"
            "    except gdb.MemoryError:\n"
            "        print('EXCLUDED-AT %#x' % pa)\n"
            "        break\n"
            "end\n")
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"stub-scan-{os.getpid()}.gdb")
    with open(path, "w") as f:
        f.write(scan)
    try:
        out = gdb_batch(stdio_target(dump["files"]), [f"source {path}", "monitor last-error"])
    finally:
        os.unlink(path)
    m = re.search(r"EXCLUDED-AT (0x[0-9a-f]+)", out)
    assert m, out
    return int(m.group(1), 16), out


def test_excluded_page_error_and_zero_excluded(samples):
    found = [d for d in samples.dumps(dump_level=31) if d["format"] in ("kdump", "elf")]
    if not found:
        pytest.skip("no dump-level-31 dump in the samples yet")
    dump = found[0]
    pa, out = first_excluded_phys(samples, dump)
    assert "excluded" in out.split(f"EXCLUDED-AT {pa:#x}")[1], out
    read = ["maint packet Qqemu.PhyMemMode:1", f"x/8xb {pa:#x}", "monitor last-error"]
    out = gdb_batch(stdio_target(dump["files"]), read)
    assert f"Cannot access memory at address {pa:#x}" in out
    assert "excluded" in out
    out = gdb_batch(stdio_target(dump["files"], "--zero-excluded"), read)
    assert re.search(rf"{pa:#x}:\s+(0x00\s+){{7}}0x00", out), out
    # And switched per connection with the monitor command.
    out = gdb_batch(stdio_target(dump["files"]), ["monitor zero-excluded on"] + read)
    assert re.search(rf"{pa:#x}:\s+(0x00\s+){{7}}0x00", out), out


def test_physical_mode_reads_physical_memory(samples):
    dump = pick(samples, "sysrq")
    out = gdb_batch(stdio_target(dump["files"]), kaslr_setup(samples.vmlinux) + [
        "python import gdb; v = int(gdb.parse_and_eval('(unsigned long)&linux_banner')); "
        "pa = (v - 0xffffffff80000000 + int(gdb.parse_and_eval('phys_base'))) & (2**64 - 1); "
        "gdb.selected_inferior().connection.send_packet('Qqemu.PhyMemMode:1'); "
        "print('PHYS', bytes(gdb.selected_inferior().read_memory(pa, 13)).decode()); "
        "gdb.selected_inferior().connection.send_packet('Qqemu.PhyMemMode:0')",
        "x/s linux_banner"])
    assert "PHYS Linux version" in out, out


def test_monitor_commands(samples):
    dump = pick(samples, "sysrq")
    truth = samples.truth(dump)
    out = gdb_batch(stdio_target(dump["files"]), kaslr_setup(samples.vmlinux) + [
        "monitor info version", "monitor help", "monitor sys",
        "python gdb.execute('monitor vtop %#x' % int(gdb.parse_and_eval('(unsigned long)&linux_banner')))",
        "monitor vtop 0x10", "monitor nonsense"])
    assert "vmcore-gdbserver" in out and "QEMU" in out
    assert "zero-excluded on|off" in out
    assert samples.manifest["release"] in out
    assert truth["panic_string"] in out
    assert re.search(r"-> PA 0x[0-9a-f]+", out), out
    assert "not mapped" in out
    assert "unknown monitor command 'nonsense'" in out


def test_mi_session_like_an_ide(samples):
    dump = pick(samples, "sysrq")
    with Server(dump["files"]) as srv:
        cmds = [f"-target-select remote {srv.target()}", "-thread-info",
                "-stack-list-frames", "-exec-continue", "-thread-info 1", "-gdb-exit"]
        p = subprocess.run(["gdb", "--interpreter=mi3", "-nx", "-q"] + GDB_INDEX_ARGS, input="\n".join(cmds) + "\n",
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
        assert srv.alive()
    out = p.stdout
    assert p.returncode == 0, out
    assert "^connected" in out
    assert re.search(r'\^done,threads=\[\{id="1",target-id="Thread 1",details="[^"]*",name="CPU#', out), out
    assert "^done,stack=[frame={level=\"0\"" in out
    assert "^running" in out and "*stopped" in out.split("^running", 1)[1]
    assert "^exit" in out


def test_several_clients_at_once(samples):
    dump = pick(samples, "sysrq")
    with Server(dump["files"]) as srv:
        procs = [subprocess.Popen(["gdb", "-batch", "-nx"] + GDB_INDEX_ARGS + ["-ex", f"target remote {srv.target()}",
                                   "-ex", f"thread {n}", "-ex", "info threads", "-ex", "p $pc"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for n in (1, 2, 3)]
        outs = [p.communicate(timeout=300)[0] for p in procs]
        assert srv.alive()
    lists = [threads_of(o) for o in outs]
    assert lists[0] and lists[0] == lists[1] == lists[2]
    for n, out in zip((1, 2, 3), outs):
        assert f"[Switching to thread {n} (Thread {n})]" in out, out  # each client its own selection


def test_malformed_packets_never_stop_the_server(samples):
    dump = pick(samples, "sysrq")

    def packet(payload):
        return b"$" + payload + b"#%02x" % (sum(payload) & 0xff)

    with Server(dump["files"]) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
            s.sendall(b"garbage\x00\xff$no-end" + b"$" + b"A" * 300000 + b"#00")
            s.sendall(b"$qSupported#00")             # bad checksum
            s.sendall(packet(b"m,") + packet(b"mzz,1") + packet(b"Hgzz") + packet(b"qXfer:x"))
            s.sendall(packet(b"qRcmd,6") + packet(b"vCont;q") + packet(b"p99999999999999999999"))
            s.sendall(packet(b"qThreadExtraInfo,0") + packet(b"T0") + packet(b"QStartNoAckMode"))
            s.sendall(packet(b"qAttached"))
            data = b""
            while b"$1#31" not in data:
                chunk = s.recv(65536)
                assert chunk, data
                data += chunk
        assert b"$E01#" in data  # the oversized packet was refused, not fatal
        assert srv.alive()
        out = gdb_batch(srv.target(), ["info threads"])
        assert "CPU#0" in out


def test_stdio_finds_vmlinux_and_serves_it(samples):
    dump = pick(samples, "sysrq")
    # No `file`: gdb asks the stub for the executable (qXfer:exec-file:read).
    out = gdb_batch(stdio_target(dump["files"]), ["p sizeof(struct task_struct) > 1000"])
    assert re.search(r"Reading symbols from \S*vmlinux", out), out
    assert "$1 = 1" in out, out


def test_tasks_modes(samples):
    dump = pick(samples, "sysrq")
    truth = samples.truth(dump)
    none = threads_of(gdb_batch(stdio_target(dump["files"], "--tasks=none"), ["info threads"]))
    assert [t[2].split()[0] for t in none] == [f"CPU#{i}" for i in range(truth["nr_cpus"])]
    active = threads_of(gdb_batch(stdio_target(dump["files"], "--tasks=active"), ["info threads"]))
    assert len(active) > len(none)
    for _, _, name, extra in active[len(none):]:
        assert extra[0] in "RD" or "running=-1" not in extra, (name, extra)


def test_user_memory_through_the_task_page_tables(samples):
    dump = pick(samples, "sysrq")
    truth = samples.truth(dump)
    if dump.get("dump_level") and dump["dump_level"] & 8:  # user pages excluded: try another
        full = [d for d in samples.dumps(scenario="sysrq") if not (d.get("dump_level") or 0) & 8]
        if not full:
            pytest.skip("every sysrq dump excludes user pages")
        dump = full[0]
    out = gdb_batch(stdio_target(dump["files"]), ["info threads"])
    task_thread = [n for n, _, name, _ in threads_of(out) if name == f"{truth['pid']} {truth['comm']}"]
    assert task_thread, out
    argv0 = f"(char *)((struct task_struct *){truth['panic_task']})->mm->arg_start"
    out = gdb_batch(stdio_target(dump["files"]), kaslr_setup(samples.vmlinux) + [
        f"thread {task_thread[0]}", f"x/s {argv0}",
        # CPU thread of the panicking CPU: its current task is the same process.
        f"thread {truth['panic_cpu'] + 1}", f"x/s {argv0}",
        # A kernel thread has no user space: the same address is not mapped there.
        f"thread {truth['nr_cpus'] + 1}", f"x/s {argv0}", "monitor last-error"])
    strings = re.findall(r'^0x[0-9a-f]+:\s+"([^"]*)"', out, re.M)
    assert len(strings) == 2 and strings[0] == strings[1], out
    assert strings[0], out
    assert "Cannot access memory at address" in out, out


def test_command_line_help_and_errors():
    """--help, --version and each subcommand's --help answer on stdout with status 0; a bad option
    gets the usage on stderr and status 2."""
    exe = server_binary()
    for argv, expected in (([], "usage: vmcore-gdbserver ["), (["info"], "usage: vmcore-gdbserver info"),
                           (["convert"], "usage: vmcore-gdbserver convert")):
        ok = subprocess.run([exe] + argv + ["--help"], capture_output=True, text=True, timeout=30)
        assert ok.returncode == 0 and ok.stdout.startswith(expected), (argv, ok.stdout, ok.stderr)
        bad = subprocess.run([exe] + argv + ["--no-such-option"], capture_output=True, text=True, timeout=30)
        assert bad.returncode == 2 and expected in bad.stderr, (argv, bad.stderr)
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    assert version.returncode == 0 and re.match(r"vmcore-gdbserver \d", version.stdout), version.stdout
