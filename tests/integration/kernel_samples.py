"""Shared helpers for the kernel-layer integration tests: the samples' manifests, kernel_probe, crash.

Environment (set by tests/run): VMCORE_GDBSERVER_BUILD (build directory, default ./build),
VMCORE_GDBSERVER_CACHE (default ~/.cache/vmcore-gdbserver). Samples are read from
$CACHE/samples/<release>/manifest.json.
"""
import glob
import json
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("VMCORE_GDBSERVER_BUILD", os.path.join(REPO, "build"))
CACHE = os.environ.get("VMCORE_GDBSERVER_CACHE", os.path.expanduser("~/.cache/vmcore-gdbserver"))
PROBE = os.path.join(BUILD, "tests", "kernel_probe")


def manifests():
    out = []
    for path in sorted(glob.glob(os.path.join(CACHE, "samples", "*", "manifest.json"))):
        with open(path) as f:
            out.append(json.load(f))
    return out


def dumps():
    """(manifest, dump) pairs for every dump of every release."""
    return [(m, d) for m in manifests() for d in m.get("dumps", [])]


def dump_params(select=None, limit=None):
    """pytest params over the dumps (the first `limit` that match), one id per dump; a single skipped
    param when there are none."""
    params = [pytest.param(m, d, id=d["id"]) for m, d in dumps() if select is None or select(d)][:limit]
    if not params:
        params = [pytest.param(None, None, marks=pytest.mark.skip(reason="no samples under " + CACHE))]
    return params


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
