"""`info` of the kernel layer on every sample dump, against the scenario's truth and crash's `sys`."""
import re
import shutil
import subprocess

import pytest

from gdbtest import dump_params
from kernel_samples import probe, probe_json, run_crash, truth


@pytest.mark.parametrize("manifest,dump", dump_params())
def test_info_matches_truth(manifest, dump):
    info = probe_json(dump, manifest["vmlinux"])
    t = truth(manifest, dump)
    assert info["release"] == manifest["release"]
    assert info["cpus"] == t["nr_cpus"]
    assert info["panic_string"] == t["panic_string"]
    assert info["panic_cpu"] == t["panic_cpu"]
    assert info["panic_task"] is not None
    assert info["panic_task"]["pid"] == t["pid"]
    assert info["panic_task"]["comm"] == t["comm"]
    if "panic_task" in t:
        assert int(info["panic_task"]["addr"], 16) == int(t["panic_task"], 16)
    assert info["tasks_error"] is None
    assert info["paging"] == {"l5": "5-level", "l4": "4-level"}[dump["paging"]]
    # The headline crash shows: a BUG() site, else the Oops line, else the panic line.
    lines = t.get("oops_lines") or []
    headline = next((x for x in lines if x.startswith("kernel BUG at ")), None) or \
        next((x for x in lines if x.startswith("Oops: ")), None) or \
        "Kernel panic - not syncing: " + t["panic_string"]
    assert info["panic_message"] == headline


@pytest.mark.parametrize("manifest,dump", dump_params())
def test_cpus_match_truth(manifest, dump):
    """Each CPU's per-CPU offset (the gs_base gdb sees) and current task, as the live kernel printed them."""
    t = truth(manifest, dump)
    if "cpu_current" not in t:
        pytest.skip("scenario truth has no cpu_current")
    lines = probe(dump, manifest["vmlinux"], "cpus").stdout.splitlines()
    cpus = {}
    for line in lines:
        m = re.match(r"(\d+) online=\d regs=(\d) panicking=(\d) per_cpu=([0-9a-f]+) current=([0-9a-f]+) \|(.*)", line)
        assert m, line
        cpus[int(m.group(1))] = m
    for want in t["cpu_current"]:
        got = cpus[want["cpu"]]
        assert int(got.group(4), 16) == int(want["per_cpu_offset"], 16)
        assert int(got.group(5), 16) == int(want["task_struct"], 16)
        assert got.group(2) == "1", "CPU %d has no registers" % want["cpu"]
        assert "gs_base=%x" % int(want["per_cpu_offset"], 16) in got.group(6)
        assert (got.group(3) == "1") == (want["cpu"] == t["panic_cpu"])


def crash_sys(text):
    fields = {}
    for line in text.splitlines():
        m = re.match(r"\s*([A-Z ]+): (.*)$", line)
        if m and m.group(1).strip() not in fields:
            fields[m.group(1).strip()] = m.group(2).strip()
    return fields


# crash takes seconds per dump: three per run cover the ELF, kdump-compressed and QEMU readers.
@pytest.mark.parametrize("manifest,dump", dump_params(
    lambda d: d["id"].endswith(("/kdump-elf", "/kdump-zlib-d31", "/qemu-kdump-zlib"))))
def test_info_matches_crash_sys(manifest, dump):
    ours = crash_sys(probe(dump, manifest["vmlinux"], "info").stdout)
    theirs = crash_sys(run_crash(dump, manifest["vmlinux"], ["sys"]))
    for key in ("RELEASE", "VERSION", "NODENAME", "DATE", "UPTIME", "MEMORY", "PANIC"):
        assert ours[key] == theirs[key], key
    assert ours["CPUS"] == theirs["CPUS"]
    assert ours["MACHINE"] == theirs["MACHINE"].split()[0]


@pytest.mark.parametrize("manifest,dump", dump_params(lambda d: d["capture"] == "qemu" and d["format"] == "elf"))
def test_layout_without_vmcoreinfo(manifest, dump, tmp_path):
    """A QEMU dump whose VMCOREINFO note is renamed: KASLR and phys_base come from CR3 and vmlinux."""
    src = dump["files"][0]
    copy = tmp_path / "novmci.elf"
    subprocess.run(["cp", "--sparse=always", "--reflink=auto", src, str(copy)], check=True)
    with open(copy, "r+b") as f:
        head = f.read(1 << 20)
        pos = head.find(b"VMCOREINFO\0")
        assert pos > 0, "no VMCOREINFO note name in the first MiB"
        f.seek(pos)
        f.write(b"XMCOREINFO")
    want = probe_json(dump, manifest["vmlinux"])
    got = probe_json(dict(dump, files=[str(copy)]), manifest["vmlinux"])
    assert want["layout_source"] == "VMCOREINFO"
    assert got["layout_source"].startswith("CR3")
    for key in ("kaslr_offset", "phys_base", "root_pgt", "page_offset", "paging", "panic_string", "panic_cpu",
                "tasks", "release", "uptime"):
        assert got[key] == want[key], key
    # Without vmlinux there is nothing to find the kernel with: a clear error, not a guess.
    res = probe(dict(dump, files=[str(copy)]), None, "info", check=False)
    assert res.returncode != 0
    assert "VMCOREINFO" in res.stderr and "vmlinux" in res.stderr


@pytest.mark.parametrize("manifest,dump", dump_params(lambda d: d["format"] == "elf"))
def test_info_without_vmlinux(manifest, dump):
    """VMCOREINFO alone gives the release, KASLR layout and panic string; tasks need vmlinux."""
    want = probe_json(dump, manifest["vmlinux"])
    got = probe_json(dump, None)
    for key in ("release", "kaslr_offset", "phys_base", "root_pgt", "paging", "panic_string"):
        assert got[key] == want[key], key
    assert got["tasks"] is None and got["vmlinux"] is None


# One dump is enough: the check does not depend on the dump, and the test copies vmlinux.
@pytest.mark.parametrize("manifest,dump",
                         dump_params(lambda d: d["capture"] == "kdump" and d["format"] == "elf", limit=1))
def test_wrong_vmlinux_rejected(manifest, dump, tmp_path):
    """A vmlinux whose build-id differs from VMCOREINFO's is refused with both ids in the message."""
    fake = tmp_path / "vmlinux"
    shutil.copyfile(manifest["vmlinux"], fake)
    out = subprocess.run(["readelf", "-n", str(fake)], capture_output=True, text=True).stdout
    build_id = re.search(r"Build ID: ([0-9a-f]+)", out).group(1)
    data = bytearray(open(fake, "rb").read())
    pos = data.find(bytes.fromhex(build_id))
    assert pos > 0
    data[pos] ^= 0xff
    open(fake, "wb").write(data)
    res = probe(dump, str(fake), "info", check=False)
    assert res.returncode != 0
    assert "does not match" in res.stderr and build_id in res.stderr
