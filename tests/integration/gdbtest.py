"""Small helpers for integration tests: serve a real dump with vmcore-gdbserver and drive a
real gdb against it.

    from gdbtest import Samples, Server, gdb_batch

    samples = Samples.load()                 # pytest-skips if the manifest does not exist yet
    dump = samples.dump(scenario="sysrq", fmt="elf")
    with Server(dump["files"]) as srv:       # TCP on a free loopback port
        out = gdb_batch(srv.target(), ["info threads"], vmlinux=samples.vmlinux)

    out = gdb_batch(stdio_target(dump["files"]), ["bt"])   # `target remote | ... --stdio`

Environment: VMCORE_GDBSERVER_BUILD (build dir holding the binary, default ./build),
VMCORE_GDBSERVER_CACHE (default ~/.cache/vmcore-gdbserver). tests/run sets both.
"""
import glob
import json
import os
import re
import shlex
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("VMCORE_GDBSERVER_BUILD", os.path.join(ROOT, "build"))
CACHE = os.environ.get("VMCORE_GDBSERVER_CACHE", os.path.expanduser("~/.cache/vmcore-gdbserver"))
RELEASE = os.environ.get("VMCORE_GDBSERVER_RELEASE", "6.1.0-56-amd64")


def server_binary():
    path = os.path.join(BUILD, "vmcore-gdbserver")
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is not built (make BUILD={BUILD})")
    return path


class Samples:
    """The samples manifest ($CACHE/samples/<release>/manifest.json)."""

    def __init__(self, manifest, path):
        self.manifest = manifest
        self.path = path
        self.vmlinux = manifest["vmlinux"]

    @classmethod
    def load(cls, release=RELEASE):
        path = os.path.join(CACHE, "samples", release, "manifest.json")
        if not os.path.exists(path):
            pytest.skip(f"no samples manifest yet at {path} (make samples)")
        with open(path) as f:
            return cls(json.load(f), path)

    def dumps(self, **match):
        """Dumps whose manifest keys equal every given value (e.g. scenario="busy", format="elf")."""
        return [d for d in self.manifest.get("dumps", [])
                if all(d.get(k) == v for k, v in match.items())]

    def dump(self, **match):
        """The first matching dump; skips the test if the samples have none (yet)."""
        found = self.dumps(**match)
        if not found:
            pytest.skip(f"no dump with {match} in {self.path}")
        return found[0]

    def truth(self, dump):
        return self.manifest["scenarios"][dump["run"]]["truth"]


def manifests():
    """Every samples manifest in the cache, one per kernel release."""
    out = []
    for path in sorted(glob.glob(os.path.join(CACHE, "samples", "*", "manifest.json"))):
        with open(path) as f:
            out.append(json.load(f))
    return out


def dump_params(select=None, limit=None):
    """pytest params (manifest, dump) over the dumps the select function accepts (the first
    `limit` of them), one id per dump; a single skipped param when there are none."""
    params = [pytest.param(m, d, id=d["id"]) for m in manifests() for d in m.get("dumps", [])
              if select is None or select(d)][:limit]
    if not params:
        params = [pytest.param(None, None, marks=pytest.mark.skip(reason="no samples under " + CACHE))]
    return params


def server_args(files, *extra, vmlinux=None):
    # VMCORE_GDBSERVER_WRAP runs the server under a checker, e.g. "valgrind -q --error-exitcode=99".
    args = shlex.split(os.environ.get("VMCORE_GDBSERVER_WRAP", "")) + [server_binary()] + list(extra)
    if vmlinux:
        args += ["--vmlinux", vmlinux]
    return args + list(files)


def stdio_target(files, *extra, vmlinux=None):
    """The `target remote | ...` argument that runs the server on gdb's pipe."""
    return "| " + " ".join(shlex.quote(a) for a in server_args(files, "--stdio", *extra, vmlinux=vmlinux))


class Server:
    """vmcore-gdbserver listening on a free loopback port, for the duration of a with-block."""

    READY = re.compile(r"listening on (\S+):(\d+)")

    def __init__(self, files, *extra, vmlinux=None, timeout=60):
        self.args = server_args(files, "--listen", "127.0.0.1:0", *extra, vmlinux=vmlinux)
        self.timeout = timeout
        self.proc = None
        self.port = None
        self.stderr_lines = []

    def __enter__(self):
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.stderr_lines.append(line)
            m = self.READY.search(line)
            if m:
                self.port = int(m.group(2))
                return self
        self.__exit__(None, None, None)
        raise RuntimeError("vmcore-gdbserver did not start: " + "".join(self.stderr_lines))

    def target(self):
        return f"127.0.0.1:{self.port}"

    def alive(self):
        return self.proc.poll() is None

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stderr:
            self.stderr_lines.append(self.proc.stderr.read())
        return False


# gdb's index of vmlinux, kept in the cache: loading vmlinux's DWARF takes tens of seconds cold
# and about one second with the index (the first session writes it).
GDB_INDEX_ARGS = ["-iex", f"set index-cache directory {os.path.join(CACHE, 'gdb-index')}",
                  "-iex", "set index-cache enabled on"]


def gdb_command(target, commands, vmlinux=None, setup=()):
    """argv for gdb -batch -nx: setup commands, target remote TARGET, then commands."""
    argv = ["gdb", "-batch", "-nx"] + GDB_INDEX_ARGS + ["-ex", "set pagination off", "-ex", "set width 0",
            "-ex", "set confirm off"]
    if vmlinux:
        argv += ["-ex", f"file {vmlinux}"]
    for c in setup:
        argv += ["-ex", c]
    argv += ["-ex", f"target remote {target}"]
    for c in commands:
        argv += ["-ex", c]
    return argv


def gdb_batch(target, commands, vmlinux=None, setup=(), timeout=300):
    """Run gdb in batch mode; returns stdout+stderr. Fails the test on a timeout."""
    argv = gdb_command(target, commands, vmlinux=vmlinux, setup=setup)
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"gdb timed out after {timeout} s: {' '.join(map(shlex.quote, argv))}")
    return p.stdout


def kaslr_setup(vmlinux):
    """gdb commands, run after `target remote`, that load vmlinux at the KASLR offset the stub
    reports (`monitor kaslr`) with per-CPU symbols kept zero-based.

    For tests that need symbols but are not about the gdbscripts' own setup command.
    """
    return [
        "symbol-file",
        "python import gdb; off = int(gdb.execute('monitor kaslr', to_string=True)"
        ".split('kaslr_offset ')[1].split()[0], 16); "
        f"gdb.execute('add-symbol-file {vmlinux} -o %#x -s .data..percpu 0' % off)",
    ]
