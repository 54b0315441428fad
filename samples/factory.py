#!/usr/bin/python3
"""Sample dump factory: real crash dumps of the Debian kernel, with ground truth.

Usage: factory.py --cache DIR [--build DIR] [--only RUN[,RUN...]] [--jobs N]

Everything lands in DIR/samples/<release>/ (layout in samples/README.md).
Each step is skipped when a stamp holding the hash of its inputs matches, so a
rerun with nothing changed only hashes a few small files.
"""

import argparse
import concurrent.futures
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# Bump when the way a run is booted or captured changes (forces new dumps).
RUN_PROCEDURE = "run-v2"
# Bump when the derived dump variants change.
VARIANTS_PROCEDURE = "variants-v2"

# Guest memory unless a run says "mem_mb".
GUEST_MEM_MB = 512
CRASHKERNEL = "160M"

# Modules both kernels need, from /lib/modules/<release>; their debug files
# are extracted from linux-image-<release>-dbg.
GUEST_MODULES = [
    "qemu_fw_cfg", "virtio_ring", "virtio",
    "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
    "virtio_blk", "failover", "net_failover", "virtio_net",
]

# One boot per run; the scenario script crashes it and both captures come
# from that same crash. "truth_args" go to the truth module (vmgs_truth.ko),
# "cmdline" to the first kernel, "net_options" to QEMU's virtio-net-pci device
# (e.g. packed=on). A run with "variants" makes only those dumps (names as in
# VARIANTS) and skips a capture none of them needs.
RUNS = [
    {"run": "sysrq-l5", "scenario": "sysrq", "paging": "l5", "cpus": 2},
    {"run": "sysrq-l4", "scenario": "sysrq", "paging": "l4", "cpus": 2},
    {"run": "busy-l5", "scenario": "busy", "paging": "l5", "cpus": 4, "truth_args": ["tasks=1"]},
    {"run": "busy-l4", "scenario": "busy", "paging": "l4", "cpus": 4, "truth_args": ["tasks=1"]},
    {"run": "null-page-l5", "scenario": "null-page", "paging": "l5", "cpus": 2},
    {"run": "slab-double-free-l5", "scenario": "slab-double-free", "paging": "l5", "cpus": 2},
    {"run": "virtio-bug-l5", "scenario": "virtio-bug", "paging": "l5", "cpus": 2},
    # The same BUG() with virtio-net on a packed ring (VIRTIO_F_RING_PACKED, which 6.1 negotiates
    # when QEMU offers it), after 300 pings so that the 256-entry rings have wrapped; one
    # compressed kdump is all the vvirtio test needs.
    {"run": "virtio-packed-l5", "scenario": "virtio-bug", "paging": "l5", "cpus": 2,
     "net_options": ["packed=on"], "cmdline": ["vmgs.virtio_pings=300"],
     "variants": ["kdump-zlib-d31"]},
    {"run": "skb-slab-frag-l5", "scenario": "skb-slab-frag", "paging": "l5", "cpus": 2},
    # A few thousand tasks, for the bench's growth figures and the task-list test; only the
    # kdump and its usual compressed form, to keep the test suite's cost small. 740 sleeper
    # processes need 768 MB (the kernel allows totalram / 128 KiB threads).
    {"run": "busy-large-l4", "scenario": "busy", "paging": "l4", "cpus": 4, "mem_mb": 768,
     "truth_args": ["tasks=1"], "cmdline": ["vmgs.busy_procs=740"],
     "variants": ["kdump-elf", "kdump-zlib-d31"]},
]

# makedumpfile outputs derived from the kdump ELF of every run:
# (name, arguments, format, compression, dump level, number of output files).
MAKEDUMPFILE_VARIANTS = [
    ("kdump-zlib-d31", ["-c", "-d", "31"], "kdump", "zlib", 31, 1),
    ("kdump-lzo-d31", ["-l", "-d", "31"], "kdump", "lzo", 31, 1),
    ("kdump-zlib-d1", ["-c", "-d", "1"], "kdump", "zlib", 1, 1),
    ("elf-d31", ["-E", "-d", "31"], "elf", "none", 31, 1),
    ("flat-zlib-d31", ["-F", "-c", "-d", "31"], "flattened", "zlib", 31, 1),
    ("split-zlib-d31", ["--split", "-c", "-d", "31"], "split", "zlib", 31, 2),
]

# Variants written by the project's own converter, when it is built.
CONVERT_VARIANTS = [
    ("kdump-zstd-d31", "zstd"),
    ("kdump-snappy-d31", "snappy"),
]

# Every variant name; a run without "variants" gets them all.
QEMU_VARIANTS = ["qemu-elf", "qemu-kdump-zlib"]
VARIANTS = (["kdump-elf"] + QEMU_VARIANTS + [v[0] for v in MAKEDUMPFILE_VARIANTS]
            + [v[0] for v in CONVERT_VARIANTS])


def run_variants(spec):
    return spec.get("variants", VARIANTS)


def mem_mb(spec):
    return spec.get("mem_mb", GUEST_MEM_MB)

RUN_TIMEOUT = 400
PVPANIC_PORT = 0x505


def log(msg):
    print(f"[samples {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run_cmd(args, **kw):
    return subprocess.run(args, check=True, **kw)


def sha_files(paths, extra=""):
    """Hash of the files' names and contents. Names inside samples/ count relative to it, others
    (the kernel, the binary) by base name, so a checkout elsewhere reuses the same cache."""
    h = hashlib.sha256(extra.encode())
    for p in sorted(paths):
        inside = os.path.abspath(p).startswith(HERE + os.sep)
        h.update((os.path.relpath(p, HERE) if inside else os.path.basename(p)).encode() + b"\0")
        with open(p, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def read_stamp(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def write_stamp(path, value):
    with open(path + ".tmp", "w") as f:
        f.write(value + "\n")
    os.replace(path + ".tmp", path)


# ---------------------------------------------------------------- packages

def installed(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg],
                       capture_output=True, text=True)
    return r.returncode == 0 and "install ok installed" in r.stdout


def ensure_packages(pkgs):
    missing = [p for p in pkgs if not installed(p)]
    if not missing:
        return
    log(f"installing {' '.join(missing)}")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run_cmd(sudo + ["apt-get", "install", "-y", "-q",
                    "--no-install-recommends"] + missing, env=env)


def detect_release():
    """The release linux-image-amd64 depends on, e.g. 6.1.0-56-amd64."""
    ensure_packages(["linux-image-amd64"])
    deps = subprocess.run(["dpkg-query", "-W", "-f=${Depends}", "linux-image-amd64"],
                          capture_output=True, text=True, check=True).stdout
    m = re.search(r"linux-image-(\d[^\s,(]*)", deps)
    if not m:
        sys.exit(f"samples: cannot find the kernel release in linux-image-amd64 Depends: {deps!r}")
    return m.group(1)


# ---------------------------------------------------------------- debug files

def ensure_debug(cache, sdir, release):
    """vmlinux and the guest modules' debug files, from the -dbg package."""
    vmlinux = os.path.join(sdir, "vmlinux")
    debug = os.path.join(sdir, "debug")
    os.makedirs(debug, exist_ok=True)
    wanted = {m: os.path.join(debug, m + ".ko") for m in GUEST_MODULES}
    # An earlier extraction kept the package's own paths: move its files
    # here and leave a link at the old vmlinux path, which others may use.
    old = os.path.join(sdir, "usr/lib/debug")
    old_vmlinux = os.path.join(old, "boot", "vmlinux-" + release)
    if os.path.isfile(old_vmlinux) and not os.path.islink(old_vmlinux):
        if not os.path.exists(vmlinux):
            os.replace(old_vmlinux, vmlinux)
        for p in glob.glob(os.path.join(old, "lib/modules", release, "**/*.ko"), recursive=True):
            name = os.path.basename(p)[:-3]
            if name in wanted and not os.path.exists(wanted[name]):
                os.replace(p, wanted[name])
        shutil.rmtree(os.path.join(old, "lib"), ignore_errors=True)
        if os.path.lexists(old_vmlinux):
            os.unlink(old_vmlinux)
        os.symlink(vmlinux, old_vmlinux)
    missing = [m for m, p in wanted.items() if not os.path.exists(p)]
    if os.path.exists(vmlinux) and not missing:
        return vmlinux, debug

    debs = os.path.join(cache, "debs")
    os.makedirs(debs, exist_ok=True)
    pkg = f"linux-image-{release}-dbg"
    found = sorted(glob.glob(os.path.join(debs, pkg + "_*.deb")))
    if not found:
        log(f"downloading {pkg} (about 860 MB)")
        run_cmd(["apt-get", "download", pkg], cwd=debs)
        found = sorted(glob.glob(os.path.join(debs, pkg + "_*.deb")))
    deb = found[-1]
    log(f"extracting vmlinux and {len(missing)} module debug files from {os.path.basename(deb)}")
    patterns = []
    if not os.path.exists(vmlinux):
        patterns.append(f"./usr/lib/debug/boot/vmlinux-{release}")
    patterns += [f"./usr/lib/debug/lib/modules/{release}/*/{m}.ko" for m in missing]
    with tempfile.TemporaryDirectory(dir=sdir) as tmp:
        tar_in = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
        run_cmd(["tar", "-x", "-C", tmp, "--wildcards"] + patterns, stdin=tar_in.stdout)
        if tar_in.wait() != 0:
            sys.exit(f"samples: dpkg-deb failed on {deb}")
        src = os.path.join(tmp, "usr/lib/debug/boot", "vmlinux-" + release)
        if os.path.exists(src):
            os.replace(src, vmlinux)
        for p in glob.glob(os.path.join(tmp, "usr/lib/debug/lib/modules", release, "**/*.ko"),
                           recursive=True):
            os.replace(p, os.path.join(debug, os.path.basename(p)))
    still = [m for m, p in wanted.items() if not os.path.exists(p)]
    if not os.path.exists(vmlinux) or still:
        sys.exit(f"samples: {deb} lacks vmlinux or modules {still}")
    return vmlinux, debug


# ---------------------------------------------------------------- guest build

def guest_sources():
    out = []
    for sub in ("modules", "guest", "scenarios"):
        for p in glob.glob(os.path.join(HERE, sub, "*")):
            if os.path.isfile(p):
                out.append(p)
    return out


def ldd_libs(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        m = re.search(r"(/\S+)\s+\(0x", line)
        if m:
            libs.append(m.group(1))
    return libs


def build_guest(sdir, release, vmlinuz):
    """Scenario modules (with debug info), the guest helper and the initramfs."""
    build = os.path.join(sdir, "build")
    stamp = os.path.join(build, "guest.stamp")
    ghash = sha_files(guest_sources() + [vmlinuz], release)
    first_initrd = os.path.join(build, "initrd-first.img")
    if read_stamp(stamp) == ghash and os.path.exists(first_initrd):
        return ghash, first_initrd
    log("building scenario modules, guest helper and initramfs")
    os.makedirs(build, exist_ok=True)

    mbuild = os.path.join(build, "modules")
    shutil.rmtree(mbuild, ignore_errors=True)
    shutil.copytree(os.path.join(HERE, "modules"), mbuild)
    run_cmd(["make", "-s", "-C", f"/lib/modules/{release}/build", f"M={mbuild}", "modules"],
            stdout=subprocess.DEVNULL)
    scen = os.path.join(sdir, "scenarios")
    shutil.rmtree(scen, ignore_errors=True)
    os.makedirs(scen)
    for ko in glob.glob(os.path.join(mbuild, "*.ko")):
        shutil.copy(ko, scen)

    helper = os.path.join(build, "vmgs-helper")
    run_cmd(["gcc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-o", helper,
             os.path.join(HERE, "guest", "vmgs-helper.c")])

    root = os.path.join(build, "root")
    shutil.rmtree(root, ignore_errors=True)
    for d in ("bin", "sbin", "proc", "sys", "dev", "tmp", "modules", "scenarios", "capture"):
        os.makedirs(os.path.join(root, d))
    shutil.copy("/bin/busybox", os.path.join(root, "bin/busybox"))
    os.symlink("busybox", os.path.join(root, "bin/sh"))
    shutil.copy(os.path.join(HERE, "guest", "init"), os.path.join(root, "init"))
    os.chmod(os.path.join(root, "init"), 0o755)
    shutil.copy(helper, os.path.join(root, "bin/vmgs-helper"))
    kexec = shutil.which("kexec") or "/sbin/kexec"
    shutil.copy(kexec, os.path.join(root, "sbin/kexec"))
    for lib in ldd_libs(kexec):
        dst = os.path.join(root, lib.lstrip("/"))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy(lib, dst)
    moddir = f"/lib/modules/{release}"
    for m in GUEST_MODULES:
        found = glob.glob(os.path.join(moddir, "kernel", "**", m + ".ko*"), recursive=True)
        if len(found) != 1 or not found[0].endswith(".ko"):
            sys.exit(f"samples: want exactly one uncompressed {m}.ko under {moddir}, found {found}")
        shutil.copy(found[0], os.path.join(root, "modules"))
    for ko in glob.glob(os.path.join(scen, "*.ko")):
        dst = os.path.join(root, "scenarios", os.path.basename(ko))
        run_cmd(["strip", "--strip-debug", "-o", dst, ko])
    for sh in glob.glob(os.path.join(HERE, "scenarios", "*.sh")):
        shutil.copy(sh, os.path.join(root, "scenarios"))

    # The capture kernel boots from main.cpio; the first kernel gets main.cpio
    # plus a second archive holding the capture kernel and main.cpio itself.
    main = os.path.join(build, "initrd-main.img")
    cpio(root, main)
    extra = os.path.join(build, "extra")
    shutil.rmtree(extra, ignore_errors=True)
    os.makedirs(os.path.join(extra, "capture"))
    shutil.copy(vmlinuz, os.path.join(extra, "capture", "vmlinuz"))
    shutil.copy(main, os.path.join(extra, "capture", "initrd.img"))
    extra_cpio = os.path.join(build, "extra.cpio")
    cpio(extra, extra_cpio)
    with open(first_initrd + ".tmp", "wb") as out:
        for part in (main, extra_cpio):
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out)
    os.replace(first_initrd + ".tmp", first_initrd)
    shutil.rmtree(extra)
    os.unlink(extra_cpio)
    write_stamp(stamp, ghash)
    return ghash, first_initrd


def cpio(root, out):
    names = subprocess.run(["find", "."], cwd=root, capture_output=True, check=True).stdout
    with open(out, "wb") as f:
        subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"], cwd=root,
                       input=names, stdout=f, check=True)


# ---------------------------------------------------------------- QMP

class QMP:
    def __init__(self, path, timeout):
        deadline = time.time() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                if time.time() > deadline:
                    raise RuntimeError(f"QMP socket {path} never came up")
                time.sleep(0.1)
        self.buf = b""
        self.events = []
        self.recv(None)  # greeting
        self.execute("qmp_capabilities")

    def recv(self, timeout):
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, cmd, args=None, timeout=600):
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self.recv(timeout)
            if "event" in r:
                self.events.append(r)
            elif "error" in r:
                raise RuntimeError(f"QMP {cmd}: {r['error']}")
            elif "return" in r:
                return r["return"]

    def wait_event(self, names, timeout):
        deadline = time.time() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e["event"] in names:
                    return self.events.pop(i)
            left = deadline - time.time()
            if left <= 0:
                return None
            try:
                r = self.recv(left)
            except socket.timeout:
                return None
            if "event" in r:
                self.events.append(r)

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------- one run

def elf_vmcore_size(path):
    """Bytes used by the ELF vmcore at the start of path (the capture disk)."""
    with open(path, "rb") as f:
        hdr = f.read(64)
        if hdr[:4] != b"\x7fELF" or hdr[4] != 2:
            raise RuntimeError(f"{path}: offset 0: no ELF64 header, the capture kernel wrote nothing")
        phoff, = struct.unpack_from("<Q", hdr, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", hdr, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    end = phoff + phentsize * phnum
    for i in range(phnum):
        off, = struct.unpack_from("<Q", table, i * phentsize + 8)
        filesz, = struct.unpack_from("<Q", table, i * phentsize + 0x20)
        end = max(end, off + filesz)
    return end


TRUTH_RE = re.compile(r"VMGS-TRUTH(\+?) (\{.*\})\s*$")
# Console lines that name an oops; `crash` shows one of them as PANIC.
OOPS_RE = re.compile(r"\] ((?:BUG: |Oops: |kernel BUG at |general protection fault|usercopy: )[^\r\n]*)")


def collect_truth(serial_log):
    truth = {}
    oops = []
    with open(serial_log, errors="replace") as f:
        for line in f:
            if "vmgs.capture" in line:  # the capture kernel's own boot
                break
            m = TRUTH_RE.search(line)
            if m:
                obj = json.loads(m.group(2))
                if m.group(1):
                    for k, v in obj.items():
                        truth.setdefault(k, []).append(v)
                else:
                    truth.update(obj)
                continue
            m = OOPS_RE.search(line)
            if m:
                oops.append(m.group(1).strip())
    if oops:
        truth["oops_lines"] = oops
    return truth


def boot_and_capture(spec, vmlinuz, initrd, rundir):
    os.makedirs(rundir)
    disk = os.path.join(rundir, "capture.img")
    with open(disk, "wb") as f:
        f.truncate((mem_mb(spec) + 64) << 20)
    serial = os.path.join(rundir, "serial.log")
    cpu = "max" if spec["paging"] == "l5" else "max,la57=off"
    append = " ".join([
        "console=ttyS0", f"crashkernel={CRASHKERNEL}", "panic=-1", "oops=panic",
        "crash_kexec_post_notifiers", "pti=on", "log_buf_len=1M",
        f"vmgs.scenario={spec['scenario']}",
        "vmgs.truth_args=" + ",".join([f"pvpanic_port={PVPANIC_PORT:#x}"] + spec.get("truth_args", [])),
    ] + spec.get("cmdline", []))
    qmp_dir = tempfile.mkdtemp(prefix="vmgs-qmp-")
    qmp_path = os.path.join(qmp_dir, "qmp.sock")
    args = [
        "qemu-system-x86_64", "-accel", "tcg", "-cpu", cpu, "-smp", str(spec["cpus"]),
        "-m", str(mem_mb(spec)), "-display", "none", "-no-reboot", "-S",
        "-kernel", vmlinuz, "-initrd", initrd, "-append", append,
        "-device", "vmcoreinfo", "-device", f"pvpanic,ioport={PVPANIC_PORT:#x}", "-action", "panic=pause",
        "-drive", f"file={disk},if=none,id=capture,format=raw,cache=unsafe",
        "-device", "virtio-blk-pci,drive=capture",
        "-netdev", "user,id=net0,restrict=on,ipv6=off", "-device", ",".join(["virtio-net-pci", "netdev=net0"] + spec.get("net_options", [])),
        "-serial", f"file:{serial}", "-monitor", "none",
        "-qmp", f"unix:{qmp_path},server=on,wait=off",
    ]
    with open(os.path.join(rundir, "qemu.cmd"), "w") as f:
        f.write(" ".join(args) + "\n")
    t0 = time.time()
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
    try:
        qmp = QMP(qmp_path, 30)
        qmp.execute("cont")
        log(f"{spec['run']}: booted, waiting for the crash")
        ev = qmp.wait_event({"GUEST_PANICKED", "SHUTDOWN"}, RUN_TIMEOUT)
        if ev is None or ev["event"] != "GUEST_PANICKED":
            raise RuntimeError(f"{spec['run']}: no guest panic ({ev}); see {serial}")
        log(f"{spec['run']}: panicked after {time.time() - t0:.0f}s, QEMU dumps")
        wanted = run_variants(spec)
        if "qemu-elf" in wanted:
            qmp.execute("dump-guest-memory", {"paging": False,
                                              "protocol": "file:" + os.path.join(rundir, "qemu.elf")})
        if "qemu-kdump-zlib" in wanted:
            qmp.execute("dump-guest-memory", {"paging": False, "format": "kdump-zlib",
                                              "protocol": "file:" + os.path.join(rundir, "qemu-kdump-zlib.flat")})
        qmp.execute("cont")
        log(f"{spec['run']}: capture kernel copying /proc/vmcore")
        qmp.wait_event({"SHUTDOWN"}, RUN_TIMEOUT)
        qmp.close()
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(qmp_dir, ignore_errors=True)
    with open(serial, errors="replace") as f:
        if "CAPTURE-DONE" not in f.read():
            raise RuntimeError(f"{spec['run']}: capture kernel did not finish; see {serial}")
    size = elf_vmcore_size(disk)
    os.truncate(disk, size)
    os.replace(disk, os.path.join(rundir, "vmcore.elf"))
    log(f"{spec['run']}: boot and captures took {time.time() - t0:.0f}s")


def make_variants(spec, rundir):
    elf = os.path.join(rundir, "vmcore.elf")
    for name, opts, _fmt, _comp, _level, nfiles in MAKEDUMPFILE_VARIANTS:
        if name not in run_variants(spec):
            continue
        outs = variant_files(rundir, name, nfiles)
        for o in outs:
            if os.path.exists(o):
                os.unlink(o)
        cmd = ["makedumpfile"] + opts + [elf]
        if "-F" in opts:
            with open(outs[0], "wb") as f:
                subprocess.run(cmd, stdout=f, stderr=subprocess.PIPE, check=True)
        else:
            subprocess.run(cmd + outs, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=True)
    log(f"{spec['run']}: makedumpfile variants written")


def variant_files(rundir, name, nfiles):
    if nfiles == 1:
        return [os.path.join(rundir, name + ".dump")]
    return [os.path.join(rundir, f"{name}.{i + 1}") for i in range(nfiles)]


def do_run(spec, sdir, vmlinuz, initrd, ghash):
    rundir = os.path.join(sdir, "dumps", spec["run"])
    stamp = os.path.join(sdir, "dumps", spec["run"] + ".stamp")
    key = hashlib.sha256(json.dumps([RUN_PROCEDURE, VARIANTS_PROCEDURE, ghash, spec, mem_mb(spec),
                                     CRASHKERNEL], sort_keys=True).encode()).hexdigest()
    if read_stamp(stamp) == key and os.path.exists(os.path.join(rundir, "run.json")):
        return
    if os.path.exists(stamp):
        os.unlink(stamp)
    shutil.rmtree(rundir, ignore_errors=True)
    log(f"{spec['run']}: booting {spec['scenario']} ({spec['paging']}, {spec['cpus']} CPUs, "
        f"{mem_mb(spec)} MB)")
    boot_and_capture(spec, vmlinuz, initrd, rundir)
    truth = collect_truth(os.path.join(rundir, "serial.log"))
    if not truth.get("truth_complete"):
        raise RuntimeError(f"{spec['run']}: truth incomplete in {rundir}/serial.log")
    make_variants(spec, rundir)
    with open(os.path.join(rundir, "run.json"), "w") as f:
        json.dump({"spec": spec, "truth": truth}, f, indent=1)
    write_stamp(stamp, key)


# ---------------------------------------------------------------- converter variants

def converter(build):
    """The project's own binary, if it is built and has `convert --compress=zstd|snappy`."""
    exe = os.path.join(build, "vmcore-gdbserver") if build else None
    if not exe or not os.access(exe, os.X_OK):
        return None
    r = subprocess.run([exe, "convert"], capture_output=True, text=True)
    usage = r.stdout + r.stderr
    return exe if "--compress" in usage and "zstd" in usage and "snappy" in usage else None


def convert_variants(spec, sdir, exe):
    """zstd and snappy copies of the -d 31 dump, by the project's converter."""
    rundir = os.path.join(sdir, "dumps", spec["run"])
    src = os.path.join(rundir, "kdump-zlib-d31.dump")
    stamp = os.path.join(rundir, "convert.stamp")
    key = sha_files([exe, src], "convert-v1")
    if read_stamp(stamp) == key:
        return True
    if os.path.exists(stamp):
        os.unlink(stamp)
    for name, comp in CONVERT_VARIANTS:
        out = os.path.join(rundir, name + ".dump")
        # Written aside and renamed: a reader of the old copy never sees a half-written file.
        r = subprocess.run([exe, "convert", f"--compress={comp}", src, out + ".tmp"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            log(f"{spec['run']}: convert --compress={comp} failed: {r.stderr.strip()}")
            if os.path.exists(out + ".tmp"):
                os.unlink(out + ".tmp")
            return False
        os.replace(out + ".tmp", out)
    write_stamp(stamp, key)
    return True


# ---------------------------------------------------------------- manifest

def dumps_of_run(spec, rundir, with_convert):
    base = {"run": spec["run"], "scenario": spec["scenario"], "paging": spec["paging"]}

    def entry(name, capture, fmt, comp, level, files):
        d = dict(base, id=f"{spec['run']}/{name}", capture=capture, format=fmt,
                 compression=comp, dump_level=level, files=files)
        return d

    out = [
        entry("kdump-elf", "kdump", "elf", "none", None, [os.path.join(rundir, "vmcore.elf")]),
        entry("qemu-elf", "qemu", "elf", "none", None, [os.path.join(rundir, "qemu.elf")]),
        # QEMU writes every page but shares one copy of the zero page: dump level 1.
        entry("qemu-kdump-zlib", "qemu", "flattened", "zlib", 1,
              [os.path.join(rundir, "qemu-kdump-zlib.flat")]),
    ]
    for name, _opts, fmt, comp, level, nfiles in MAKEDUMPFILE_VARIANTS:
        out.append(entry(name, "kdump", fmt, comp, level, variant_files(rundir, name, nfiles)))
    if with_convert:
        for name, comp in CONVERT_VARIANTS:
            out.append(entry(name, "kdump", "kdump", comp, 31, [os.path.join(rundir, name + ".dump")]))
    wanted = run_variants(spec)
    return [d for d in out if d["id"].split("/", 1)[1] in wanted]


def write_manifest(sdir, release, vmlinux, debug, runs, converted):
    scenarios = {}
    dumps = []
    for spec in runs:
        rundir = os.path.join(sdir, "dumps", spec["run"])
        path = os.path.join(rundir, "run.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            rec = json.load(f)
        scenarios[spec["run"]] = {"scenario": spec["scenario"], "paging": spec["paging"],
                                  "cpus": spec["cpus"], "mem_mb": mem_mb(spec),
                                  "serial_log": os.path.join(rundir, "serial.log"),
                                  "truth": rec["truth"]}
        if "variants" in spec:
            scenarios[spec["run"]]["variants"] = spec["variants"]
        dumps += dumps_of_run(spec, rundir, spec["run"] in converted)
    manifest = {
        "release": release,
        "vmlinux": vmlinux,
        "module_debug_dirs": [debug, os.path.join(sdir, "scenarios")],
        "scenarios": scenarios,
        "dumps": dumps,
    }
    path = os.path.join(sdir, "manifest.json")
    with open(path + ".tmp", "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(path + ".tmp", path)
    return manifest


def offer_dev_dump(cache, manifest):
    """A small dev dump for other helpers, unless someone already set one up."""
    dev = os.path.join(cache, "dev")
    readme = os.path.join(dev, "README")
    if os.path.exists(readme):
        return
    picks = [d for d in manifest["dumps"] if d["run"] == "sysrq-l5"
             and d["id"].split("/")[1] in ("qemu-elf", "kdump-elf", "kdump-zlib-d31")]
    if len(picks) != 3:
        return
    os.makedirs(dev, exist_ok=True)
    lines = ["Development dumps (symlinks into samples/; made by samples/factory.py).",
             f"vmlinux: {manifest['vmlinux']}", ""]
    for d in picks:
        name = d["id"].split("/")[1]
        link = os.path.join(dev, name + os.path.splitext(d["files"][0])[1])
        if not os.path.lexists(link):
            os.symlink(d["files"][0], link)
        lines.append(f"{os.path.basename(link)}: sysrq crash, 5-level paging, 2 CPUs, "
                     f"{d['capture']} capture, format {d['format']}, compression {d['compression']}")
    lines.append("Full list with ground truth: " + os.path.join(os.path.dirname(manifest["vmlinux"]),
                                                             "manifest.json"))
    with open(readme, "w") as f:
        f.write("\n".join(lines) + "\n")


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--build", default=None)
    ap.add_argument("--only", default=None, help="comma-separated run ids")
    ap.add_argument("--jobs", type=int, default=1, help="runs booted at once")
    opts = ap.parse_args()
    t0 = time.time()
    cache = os.path.abspath(opts.cache)

    release = detect_release()
    ensure_packages([f"linux-image-{release}", f"linux-headers-{release}", "qemu-system-x86",
                     "kexec-tools", "busybox-static", "makedumpfile", "cpio", "libc6-dev", "gcc",
                     "make", "binutils"])
    sdir = os.path.join(cache, "samples", release)
    os.makedirs(os.path.join(sdir, "dumps"), exist_ok=True)
    # One factory at a time per release (several people may run make samples).
    lock = open(os.path.join(sdir, ".lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log("another factory is running here; waiting for it")
        fcntl.flock(lock, fcntl.LOCK_EX)
    vmlinuz = f"/boot/vmlinuz-{release}"
    vmlinux, debug = ensure_debug(cache, sdir, release)
    ghash, initrd = build_guest(sdir, release, vmlinuz)

    runs = RUNS
    if opts.only:
        wanted = set(opts.only.split(","))
        runs = [r for r in RUNS if r["run"] in wanted]
    failed = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        futs = {pool.submit(do_run, spec, sdir, vmlinuz, initrd, ghash): spec for spec in runs}
        for fut in concurrent.futures.as_completed(futs):
            try:
                fut.result()
            except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
                failed.append(futs[fut]["run"])
                log(f"FAILED {futs[fut]['run']}: {e}")

    # Converter variants are refreshed when the binary is built; ones made
    # earlier stay listed (a rebuilt run starts from an empty directory, so
    # they always belong to the current dump).
    exe = converter(opts.build)
    converted = set()
    for spec in RUNS:
        rundir = os.path.join(sdir, "dumps", spec["run"])
        if not os.path.exists(os.path.join(rundir, "run.json")):
            continue
        if exe and any(name in run_variants(spec) for name, _ in CONVERT_VARIANTS):
            convert_variants(spec, sdir, exe)
        if os.path.exists(os.path.join(rundir, "convert.stamp")):
            converted.add(spec["run"])
    manifest = write_manifest(sdir, release, vmlinux, debug, RUNS, converted)
    offer_dev_dump(cache, manifest)
    log(f"manifest: {len(manifest['dumps'])} dumps of {len(manifest['scenarios'])} runs "
        f"in {os.path.join(sdir, 'manifest.json')} ({time.time() - t0:.1f}s)")
    if failed:
        sys.exit(f"samples: runs failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
