"""Every page of every sample dump read by memmodel and by libkdumpfile: identical bytes, or an
error from both (same class: no data vs corrupt). Also checks what memmodel says about the format."""
from formats_common import assert_agree, rearranged, xcheck
from gdbtest import dump_params

import pytest

FORMAT_NAMES = {"elf": ("elf",), "kdump": ("kdump",), "flattened": ("flattened-kdump", "flattened-elf"),
                "split": ("split-kdump",)}


@pytest.mark.parametrize("manifest,dump", dump_params())
def test_pages_match_libkdumpfile(manifest, dump, tmp_path):
    report = xcheck(dump["files"], rearranged(dump, tmp_path))
    assert_agree(report)
    assert report["format"] in FORMAT_NAMES[dump["format"]], report["format"]
    desc = report["description"]
    if dump["format"] != "elf":
        assert dump["compression"] in desc, desc
    if dump["dump_level"] is not None and dump["format"] != "elf":
        assert f"dump level {dump['dump_level']}" in desc, desc
    print(f"{dump['id']}: {desc}; open {report['open_ms']:.2f} ms (libkdumpfile {report['libkdumpfile_open_ms']:.2f} ms)")


@pytest.mark.parametrize("manifest,dump", dump_params(lambda d: d["format"] == "split"))
def test_split_files_in_any_order(manifest, dump):
    files = list(reversed(dump["files"]))
    report = xcheck(files, dump["files"])
    assert_agree(report)
    assert report["format"] == "split-kdump"
