"""dump_convert output in every compression is read by libkdumpfile and crash: the pages equal the
source's (as memmodel reads it), and crash's `sys` shows the scenario's release and panic."""
import os
import subprocess

import pytest

from formats_common import CONVERT, assert_agree, need, xcheck
from gdbtest import manifests

COMPRESSIONS = ("zstd", "snappy", "lzo", "zlib", "none")


def sources():
    """One source of each kind from the first scenario of each release: a kdump ELF, a dump-level
    31 kdump file (excluded pages stay excluded), a split set and a flattened file."""
    params = []
    for m in manifests():
        runs = sorted({d["run"] for d in m["dumps"]})
        if not runs:
            continue
        first = [d for d in m["dumps"] if d["run"] == runs[0]]
        for kind in ("elf", "kdump", "split", "flattened"):
            cands = [d for d in first if d["format"] == kind]
            if cands:
                params.append(pytest.param(m, cands[0], id=cands[0]["id"]))
    return params or [pytest.param(None, None, marks=pytest.mark.skip(reason="no samples"))]


def convert(src_files, out, compression, level=1):
    need(CONVERT[0])
    return subprocess.run([*CONVERT, f"--compress={compression}", f"--dump-level={level}", *src_files, out],
                          capture_output=True, text=True, timeout=900)


def crash_sys(vmlinux, files):
    res = subprocess.run(["crash", "-s", vmlinux, *files], input="sys\nquit\n", capture_output=True, text=True,
                         timeout=600)
    return res.stdout + res.stderr


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_every_compression_readable(compression, tmp_path):
    ms = manifests()
    if not ms:
        pytest.skip("no samples")
    m = ms[0]
    src = next((d for d in m["dumps"] if d["format"] == "elf" and d["capture"] == "kdump"), None) or \
        next(d for d in m["dumps"] if d["format"] == "elf")
    out = str(tmp_path / f"out-{compression}.kdump")
    res = convert(src["files"], out, compression)
    assert res.returncode == 0, res.stderr
    report = xcheck(src["files"], [out])
    assert_agree(report)
    truth = m["scenarios"][src["run"]]["truth"]
    text = crash_sys(m["vmlinux"], [out])
    assert f"RELEASE: {m['release']}" in text, text
    assert truth["panic_string"] in text, text


@pytest.mark.parametrize("manifest,src", sources())
def test_convert_each_input_format(manifest, src, tmp_path):
    out = str(tmp_path / "out.kdump")
    res = convert(src["files"], out, "zstd")
    assert res.returncode == 0, res.stderr
    report = xcheck(src["files"], [out])
    assert_agree(report)
    if src["dump_level"]:
        assert f"dump level {src['dump_level']}" in report["description"] or report["format"] == "elf"


def test_unsupported_dump_level_refused(tmp_path):
    ms = manifests()
    if not ms:
        pytest.skip("no samples")
    src = ms[0]["dumps"][0]
    out = str(tmp_path / "never.kdump")
    res = convert(src["files"], out, "zstd", level=31)
    assert res.returncode != 0
    assert "dump level 31" in res.stderr
    assert not os.path.exists(out)
