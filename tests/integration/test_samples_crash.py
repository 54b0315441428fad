"""The sample dumps, read by an independent reader: Debian's `crash`.

For every dump in manifest.json, `crash -s vmlinux FILES` runs `sys`; its
RELEASE, PANIC and CPUS must match the ground truth the guest printed before
it crashed. This proves the factory (samples/factory.py), not our reader.
"""

import concurrent.futures
import os
import re
import subprocess

import pytest

from gdbtest import CACHE, manifests

MANIFESTS = manifests()
DUMPS = [(m, d) for m in MANIFESTS for d in m["dumps"]]


def test_manifest_exists():
    assert MANIFESTS, f"no {CACHE}/samples/*/manifest.json: run `make samples`"


def test_manifest_lists_both_captures_and_all_formats():
    for m in MANIFESTS:
        for run_id, run in m["scenarios"].items():
            mine = [d for d in m["dumps"] if d["run"] == run_id]
            if "variants" in run:  # a run made with only some variants: exactly those
                assert sorted(d["id"] for d in mine) == sorted(f"{run_id}/{v}" for v in run["variants"]), run_id
            else:
                assert {d["capture"] for d in mine} == {"kdump", "qemu"}, run_id
                assert {"elf", "kdump", "flattened", "split"} <= {d["format"] for d in mine}, run_id
                assert {"none", "zlib", "lzo"} <= {d["compression"] for d in mine}, run_id
            truth = run["truth"]
            for key in ("panic_string", "panic_cpu", "pid", "comm", "nr_cpus"):
                assert key in truth, f"{run_id}: truth lacks {key}"
            assert truth["nr_cpus"] == run["cpus"], run_id
            for d in mine:
                for f in d["files"]:
                    assert os.path.getsize(f) > 0, f


def crash_sys(vmlinux, files):
    r = subprocess.run(["crash", "-s", vmlinux] + files, input="sys\nexit\n",
                       capture_output=True, text=True, timeout=600)
    fields = {}
    for line in r.stdout.splitlines():
        m = re.match(r"\s*([A-Z ]+):\s(.*)$", line)
        if m:
            fields.setdefault(m.group(1).strip(), m.group(2).strip())
    return r, fields


@pytest.fixture(scope="module")
def crash_results(request):
    """`sys` of every selected dump; crash spends ~20 s loading vmlinux, so run one per core."""
    selected = {item.callspec.params["dump"]["id"] for item in request.session.items
                if hasattr(item, "callspec") and "dump" in item.callspec.params}
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futs = {d["id"]: pool.submit(crash_sys, m["vmlinux"], d["files"])
                for m, d in DUMPS if d["id"] in selected}
        return {k: f.result() for k, f in futs.items()}


@pytest.mark.parametrize("manifest,dump", DUMPS, ids=[d["id"] for _, d in DUMPS])
def test_crash_sys_matches_truth(crash_results, manifest, dump):
    truth = manifest["scenarios"][dump["run"]]["truth"]
    r, sys_ = crash_results[dump["id"]]
    context = f"crash on {dump['files']}:\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}"
    assert sys_.get("RELEASE") == manifest["release"], context
    cpus = re.match(r"(\d+)", sys_.get("CPUS", ""))
    assert cpus and int(cpus.group(1)) == truth["nr_cpus"], context
    # crash shows the panic() message, or for an oops the oops line itself.
    panic = sys_.get("PANIC", "")
    expected = [truth["panic_string"]] + (truth.get("oops_lines", []))
    assert any(e and e in panic for e in expected), f"PANIC {panic!r} not in {expected}\n{context}"
