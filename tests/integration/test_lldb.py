"""LLDB against vmcore-gdbserver: Debian's lldb connects with `gdb-remote`, lists the threads,
reads registers and memory, and sees the values the scenario module recorded before the crash.

LLDB has no KASLR logic for a Linux kernel: the test slides vmlinux by the offset the stub
reports (`monitor kaslr`), as the README tells users to do.
"""
import re
import shutil
import subprocess
import time

import pytest

from gdbtest import Samples, Server, gdb_batch

LLDB_TIMEOUT = 600


def lldb_batch(commands, timeout=LLDB_TIMEOUT):
    """Run lldb in batch mode; returns (output, seconds)."""
    argv = ["lldb", "--batch", "--no-lldbinit"]
    for c in commands:
        argv += ["-o", c]
    start = time.monotonic()
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"lldb timed out after {timeout} s; output so far:\n{e.stdout}")
    return p.stdout, time.monotonic() - start


def kaslr_offset(target, vmlinux):
    out = gdb_batch(target, ["monitor kaslr"], vmlinux=vmlinux)
    m = re.search(r"(?:KERNELOFFSET=|kaslr_offset\s+)(0x[0-9a-fA-F]+)", out)
    assert m, f"`monitor kaslr` gave no offset:\n{out}"
    return int(m.group(1), 16)


def command_output(out, command):
    """The text lldb printed after `(lldb) command` and before the next prompt."""
    start = out.find(f"(lldb) {command}\n")
    assert start >= 0, f"lldb did not run {command!r}:\n{out}"
    body = out[start + len(command) + 8:]
    end = body.find("(lldb) ")
    return body if end < 0 else body[:end]


@pytest.fixture(scope="module")
def sample():
    if shutil.which("lldb") is None:
        pytest.fail("lldb is not installed (make deps installs Debian's lldb)")
    samples = Samples.load()
    found = samples.dumps(capture="kdump", format="kdump") or samples.dumps(format="kdump")
    if not found:
        pytest.skip(f"no kdump-compressed dump in {samples.path}")
    dump = found[0]
    return samples, dump, samples.truth(dump)


def test_lldb_threads_registers_memory(sample, capsys):
    samples, dump, truth = sample
    vmlinux = samples.vmlinux
    panic_cpu = truth["panic_cpu"]
    # CPU threads only: lldb unwinds every listed thread when it prints the list.
    with Server(dump["files"], "--tasks=none", vmlinux=vmlinux) as srv:
        offset = kaslr_offset(srv.target(), vmlinux)
        commands = [
            f"target create {vmlinux}",
            f"gdb-remote {srv.target()}",
            f"target modules load --file vmlinux --slide {offset:#x}",
            "process plugin packet send qHostInfo",
            "process plugin packet send qProcessInfo",
            "thread list",
            "register read rip rsp rbp gs_base",
            f"expression -- __per_cpu_offset[{panic_cpu}]",
            "memory read --format d --size 4 --count 1 &panic_cpu",
            "expression -- init_task.comm",
            "process detach",
        ]
        out, seconds = lldb_batch(commands)
        assert srv.alive(), "".join(srv.stderr_lines)

    host_info = command_output(out, "process plugin packet send qHostInfo")
    assert "x86_64-unknown-linux-gnu".encode().hex() in host_info, host_info
    assert "ptrsize:8" in host_info and "endian:little" in host_info, host_info
    process_info = command_output(out, "process plugin packet send qProcessInfo")
    assert re.search(r"response: pid:1;", process_info), process_info

    threads = command_output(out, "thread list")
    listed = re.findall(r"thread #(\d+): tid = (\w+),", threads)
    assert len(listed) == truth["nr_cpus"], threads
    # The stop is reported on the panicking CPU, whose thread id is CPU + 1 as in gdb (LLDB
    # numbers the stopped thread #1); the registers below are that thread's.
    assert re.search(rf"\* thread #\d+: tid = (0x0*)?{panic_cpu + 1},", threads), threads

    regs = command_output(out, "register read rip rsp rbp gs_base")
    values = {name: int(v, 16) for name, v in re.findall(r"(\w+) = (0x[0-9a-f]+)", regs)}
    assert values["rip"] >= 0xffffffff80000000, regs
    assert values["rsp"] >= 0xff00000000000000, regs
    # (No cr3 here: a kdump capture's NT_PRSTATUS notes hold no control registers.)
    # A CPU thread's gs_base is the kernel's per-CPU base of that CPU.
    per_cpu = command_output(out, f"expression -- __per_cpu_offset[{panic_cpu}]")
    m = re.search(r"= (\d+)", per_cpu)
    assert m, per_cpu
    assert values["gs_base"] == int(m.group(1)), (regs, per_cpu)

    panic_mem = command_output(out, "memory read --format d --size 4 --count 1 &panic_cpu")
    m = re.search(r"0x[0-9a-f]+: (-?\d+)", panic_mem)
    assert m and int(m.group(1)) == panic_cpu, panic_mem
    comm = command_output(out, "expression -- init_task.comm")
    assert '"swapper/0' in comm, comm

    with capsys.disabled():
        print(f"\n[lldb] {dump['id']}: connect + {len(listed)} threads + registers + memory "
              f"in {seconds:.1f} s (lldb 14, vmlinux loaded)")
