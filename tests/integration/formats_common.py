"""Shared by the test_formats_* integration tests: where the build and the samples are, and how to
run the libkdumpfile cross-check (xcheck_kdumpfile) and `vmcore-gdbserver convert`."""
import json
import os
import subprocess

import pytest

from gdbtest import BUILD

XCHECK = os.path.join(BUILD, "tests", "xcheck_kdumpfile")
CONVERT = [os.path.join(BUILD, "vmcore-gdbserver"), "convert"]


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
