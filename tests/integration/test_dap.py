"""An IDE path for real: the npm package cdt-gdb-adapter (the gdb debug adapter VS Code
extensions use) driven over the Debug Adapter Protocol against vmcore-gdbserver serving a
sample dump. tests/dap/dap_session.js plays the IDE: initialize, attach with `target remote`,
configurationDone (the adapter then resumes the target, as IDEs do on attach), threads,
stackTrace, scopes, variables, evaluate, continue, disconnect. Answers are checked against the
scenario's ground truth; request latencies are printed (measured, never asserted).
"""
import json
import os
import shutil
import statistics
import subprocess

import pytest

from gdbtest import BUILD, GDB_INDEX_ARGS, ROOT, Samples, Server, kaslr_setup

DAP_DIR = os.path.join(ROOT, "tests", "dap")
SESSION_JS = os.path.join(DAP_DIR, "dap_session.js")
ADAPTER = os.path.join(DAP_DIR, "node_modules", "cdt-gdb-adapter", "dist", "debugTargetAdapter.js")
GDBSCRIPTS_ENTRY = os.path.join(ROOT, "gdbscripts", "vmcore_gdb.py")
# Functions one of which is on the panicking CPU's stack in a kdump capture.
PANIC_PATH = {"panic", "vpanic", "__crash_kexec", "crash_kexec", "machine_crash_shutdown",
              "crash_setup_regs"}


def init_commands(vmlinux):
    """What a user puts in launch.json: the project's gdb scripts, which relocate vmlinux by
    the KASLR offset. Until they exist in the tree, the same relocation done by hand."""
    if os.path.exists(GDBSCRIPTS_ENTRY):
        return [f"source {GDBSCRIPTS_ENTRY}"]
    return kaslr_setup(vmlinux)


def dap_session(target, vmlinux, evaluate=(), repeat=1, stack_threads=(), scopes=True, timeout=600):
    if shutil.which("node") is None or not os.path.exists(ADAPTER):
        pytest.fail(f"cdt-gdb-adapter is not installed in {DAP_DIR} (make dap-deps)")
    config = {
        "gdb": "gdb", "gdbArguments": GDB_INDEX_ARGS, "program": vmlinux, "target": target,
        "initCommands": init_commands(vmlinux), "evaluate": list(evaluate), "repeat": repeat,
        "stackThreads": list(stack_threads), "scopes": scopes, "timeoutMs": timeout * 1000,
        "continueWaitMs": 20000,
        "adapterLog": os.path.join(BUILD, "tests", "dap-adapter.log"),
    }
    os.makedirs(os.path.dirname(config["adapterLog"]), exist_ok=True)
    try:
        p = subprocess.run(["node", SESSION_JS, json.dumps(config)], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout + 60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"DAP session timed out after {timeout} s (log: {config['adapterLog']})")
    try:
        result = json.loads(p.stdout)
    except ValueError:
        pytest.fail(f"dap_session.js printed no JSON:\n{p.stdout}\n{p.stderr}")
    assert "error" not in result, (result.get("error"), result.get("outputEvents"),
                                   result.get("adapterStderr"))
    return result


def kdump_dump(samples, **match):
    found = samples.dumps(capture="kdump", format="kdump", **match)
    if not found:
        pytest.skip(f"no kdump-compressed kdump capture with {match} in {samples.path}")
    return found[0]


def ms(values):
    return f"median {statistics.median(values):.1f} ms (max {max(values):.1f}, n={len(values)})"


def test_dap_attach_inspect_continue_disconnect(capsys):
    samples = Samples.load()
    dump = kdump_dump(samples, scenario="sysrq")
    truth = samples.truth(dump)
    vmlinux = samples.vmlinux
    panic_cpu = truth["panic_cpu"]
    evaluate = ["panic_cpu.counter", "init_task.comm", f"__per_cpu_offset[{panic_cpu}]",
                "$gs_base", "$rip"]
    with Server(dump["files"], vmlinux=vmlinux) as srv:
        r = dap_session(srv.target(), vmlinux, evaluate=evaluate, repeat=3,
                        stack_threads=[f"{truth['pid']} {truth['comm']}"])
        assert srv.alive(), "".join(srv.stderr_lines)

    # configurationDone resumed the target; a dump answers with an immediate stop on the
    # panicking CPU, so the session never had to pause it.
    stop = r["stoppedAfterConfigurationDone"]
    assert stop is not None, "no stop after the adapter resumed the target"
    assert stop["threadId"] == panic_cpu + 1, stop

    names = [t["name"] for t in r["threads"]]
    assert len(names) > truth["nr_cpus"], names
    for cpu in range(truth["nr_cpus"]):
        assert f"CPU#{cpu}" in names[cpu], names[:truth["nr_cpus"]]
    assert any(f"{truth['pid']} {truth['comm']}" in n for n in names), names

    frames = r["stackFrames"]
    functions = [f["name"].split("(")[0].strip() for f in frames]
    assert len(frames) >= 3, functions
    assert PANIC_PATH & set(functions), functions
    assert frames[0].get("source", {}).get("name"), frames[0]

    scope_names = [s["name"] for s in r["scopes"]]
    assert "Registers" in scope_names, scope_names
    registers = {v["name"]: v["value"] for v in r["variables"]["Registers"]["variables"]}
    assert int(registers["rip"], 16) == int(frames[0]["instructionPointerReference"], 16)
    assert int(registers["rsp"], 16) >= 0xff00000000000000, registers["rsp"]
    for scope in r["variables"].values():
        assert scope["success"], scope["message"]

    ev = r["evaluate"]
    for expression, answer in ev.items():
        assert answer["success"], (expression, answer["message"])
    assert int(ev["panic_cpu.counter"]["result"]) == panic_cpu
    assert "swapper/0" in ev["init_task.comm"]["result"] or ev["init_task.comm"]["children"], \
        ev["init_task.comm"]
    # The CPU thread's gs_base is that CPU's per-CPU base (gdb shows the register signed).
    per_cpu = int(ev[f"__per_cpu_offset[{panic_cpu}]"]["result"], 0)
    assert per_cpu != 0 and int(ev["$gs_base"]["result"], 0) % (1 << 64) == per_cpu

    other = r["otherStacks"].get(f"{truth['pid']} {truth['comm']}")
    assert other and other["success"] and other["frames"], other

    assert r["continue"]["success"], r["continue"]
    assert r["continue"]["stoppedAgain"] is not None, "continue did not come back with a stop"
    assert "pausedBySession" not in r["continue"]
    assert r["disconnect"]["success"], r["disconnect"]

    with capsys.disabled():
        local = r["variables"].get("Local", {}).get("ms", 0)
        print(f"\n[dap] {dump['id']}: {len(names)} threads; threads {ms(r['latency']['threads'])}; "
              f"stackTrace {ms(r['latency']['stackTrace'])}; first Local variables {local:.0f} ms; "
              f"attach {r['timings']['attach']:.0f} ms")


@pytest.mark.parametrize("tasks", ["all", "active"])
def test_dap_latency_busy(tasks, capsys):
    """Thousands of task threads: how long an IDE waits for `threads` and `stackTrace`, with
    every task listed and with --tasks=active (running, runnable or in D state)."""
    samples = Samples.load()
    dump = kdump_dump(samples, scenario="busy")
    truth = samples.truth(dump)
    vmlinux = samples.vmlinux
    with Server(dump["files"], f"--tasks={tasks}", vmlinux=vmlinux) as srv:
        r = dap_session(srv.target(), vmlinux, evaluate=["panic_cpu.counter"], repeat=5, scopes=False)
        assert srv.alive(), "".join(srv.stderr_lines)
    names = [t["name"] for t in r["threads"]]
    assert len(names) > truth["nr_cpus"], names[:10]
    assert r["stackFrames"], "no frames on the stopped thread"
    assert int(r["evaluate"]["panic_cpu.counter"]["result"]) == truth["panic_cpu"]
    with capsys.disabled():
        print(f"\n[dap busy --tasks={tasks}] {dump['id']}: {len(names)} threads; "
              f"threads {ms(r['latency']['threads'])}; stackTrace {ms(r['latency']['stackTrace'])}; "
              f"attach {r['timings']['attach']:.0f} ms")
