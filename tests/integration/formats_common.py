"""Shared by the test_formats_* integration tests: where the build and the samples are, and how to
run the libkdumpfile cross-check (xcheck_kdumpfile) and the dump_convert driver (convert_dump)."""
import glob
import json
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("VMCORE_GDBSERVER_BUILD") or os.path.join(REPO, os.environ.get("BUILD", "build")))
CACHE = os.environ.get("VMCORE_GDBSERVER_CACHE") or os.environ.get("CACHE") or os.path.expanduser("~/.cache/vmcore-gdbserver")
XCHECK = os.path.join(BUILD, "tests", "xcheck_kdumpfile")
CONVERT = os.path.join(BUILD, "tests", "convert_dump")


def manifests():
    out = []
    for path in sorted(glob.glob(os.path.join(CACHE, "samples", "*", "manifest.json"))):
        with open(path) as f:
            out.append(json.load(f))
    return out


def dump_params(select=None):
    params = [pytest.param(m, d, id=d["id"]) for m in manifests() for d in m.get("dumps", [])
              if select is None or select(d)]
    if not params:
        params = [pytest.param(None, None, marks=pytest.mark.skip(reason="no samples under " + CACHE))]
    return params


def need(path):
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} not built (make unit-bins)")


def rearranged(dump, tmp_path):
    """libkdumpfile 0.5.1 cannot read flattened files: give it `makedumpfile -R` output instead."""
    if dump["format"] != "flattened":
        return dump["files"]
    out = str(tmp_path / "rearranged.dump")
    with open(dump["files"][0], "rb") as f:
        res = subprocess.run(["makedumpfile", "-R", out], stdin=f, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    return [out]


def xcheck(ours, theirs):
    """Run the cross-check; returns its JSON report (exit status 3 = disagreements, kept in the report)."""
    need(XCHECK)
    cmd = [XCHECK, *ours] + (["--theirs", *theirs] if theirs != ours else [])
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert res.returncode in (0, 3), f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr}"
    return json.loads(res.stdout)


def assert_agree(report):
    """Every page gave the same bytes, or both readers failed with the same class of error."""
    bad = {k: report[k] for k in ("mismatch", "error_class_differs", "only_memmodel_error", "only_libkdumpfile_error")
           if report[k]}
    assert not bad, f"{report['description']}: {bad}; first: {report['disagreements']}"
    assert report["same"] > 0, report
