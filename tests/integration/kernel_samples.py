"""Shared helpers for the kernel-layer integration tests: kernel_probe and crash on sample dumps.

Environment (set by tests/run): VMCORE_GDBSERVER_BUILD (build directory, default ./build),
VMCORE_GDBSERVER_CACHE (default ~/.cache/vmcore-gdbserver). Samples are read from
$CACHE/samples/<release>/manifest.json.
"""
import json
import os
import subprocess

from gdbtest import BUILD

PROBE = os.path.join(BUILD, "tests", "kernel_probe")


def truth(manifest, dump):
    return manifest["scenarios"][dump["run"]]["truth"]


def probe(dump, vmlinux, *args, stdin=None, check=True):
    vml = vmlinux if vmlinux else "-"
    res = subprocess.run([PROBE, ",".join(dump["files"]), vml, *args], input=stdin, capture_output=True,
                         text=True, timeout=600)
    if check and res.returncode != 0:
        raise AssertionError("kernel_probe %s failed: %s" % (" ".join(args), res.stderr))
    return res


def probe_json(dump, vmlinux):
    return json.loads(probe(dump, vmlinux, "info", "--json").stdout)


def run_crash(dump, vmlinux, commands):
    """Run crash once with all commands; returns its stdout."""
    script = "\n".join(commands + ["quit"]) + "\n"
    res = subprocess.run(["crash", "-s", vmlinux, *dump["files"]], input=script, capture_output=True, text=True,
                         timeout=1200)
    assert "KERNEL:" in res.stdout or res.returncode == 0, "crash failed: " + res.stderr[-2000:]
    return res.stdout
