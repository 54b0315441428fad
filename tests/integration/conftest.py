"""Session-wide guard: no test run may write to a sample dump.

Every dump file in the manifest keeps its size, mtime and ctime across the whole run (a write or a
chmod changes them); the small dumps most tests serve are also hashed before and after.
"""
import hashlib
import json
import os
import re
import subprocess

import pytest

import gdbtest

HASHED_LIMIT = 64 << 20  # hash files up to this size; stat the rest


def dump_files():
    path = os.path.join(gdbtest.CACHE, "samples", gdbtest.RELEASE, "manifest.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return sorted({p for d in json.load(f).get("dumps", []) for p in d["files"]})


def fingerprint(path):
    st = os.stat(path)
    digest = None
    if st.st_size <= HASHED_LIMIT:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        digest = h.hexdigest()
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, digest


@pytest.fixture(scope="session")
def samples():
    """The samples manifest; tests that need it skip until `make samples` has made it."""
    return gdbtest.Samples.load()


@pytest.fixture(scope="session")
def lx_scripts():
    """The kernel's vmlinux-gdb.py of the dumped release, built into the cache on first use from
    Debian's linux-source (stub/stub.mk linux-scripts-gdb does the same)."""
    out = os.path.join(gdbtest.CACHE, "linux-scripts-gdb", gdbtest.RELEASE)
    loader = os.path.join(out, "vmlinux-gdb.py")
    if not os.path.exists(loader):
        tarballs = sorted(f for f in os.listdir("/usr/src") if re.match(r"linux-source-.*\.tar\.xz$", f))
        if not tarballs:
            pytest.fail("linux-source is not installed (make deps installs linux-source-6.1)")
        subprocess.run(["sh", os.path.join(gdbtest.ROOT, "tests/integration/linux_scripts_gdb.sh"),
                        os.path.join("/usr/src", tarballs[-1]), gdbtest.RELEASE, out],
                       check=True, timeout=1800)
    return loader


@pytest.fixture(scope="session", autouse=True)
def dumps_are_never_written():
    before = {p: fingerprint(p) for p in dump_files()}
    yield
    changed = [p for p, fp in before.items() if not os.path.exists(p) or fingerprint(p) != fp]
    assert not changed, f"sample dumps changed during the test run: {changed}"
