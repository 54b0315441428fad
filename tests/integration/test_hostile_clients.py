"""Hostile and heavy clients: the server keeps serving every other client, with the same answers.

Clients that vanish mid-packet or mid-reply, pipelined request storms, several gdb sessions at once
looping over all backtraces and large reads (the soak: VMCORE_SOAK_SECONDS, short in `make check`,
ten minutes in `make soak`). The hostile part runs the sanitizer build when it exists.
"""
import os
import re
import socket
import subprocess
import threading
import time

import gdbtest

SOAK_SECONDS = float(os.environ.get("VMCORE_SOAK_SECONDS", "30"))
SOAK_CLIENTS = int(os.environ.get("VMCORE_SOAK_CLIENTS", "8"))


def packet(payload):
    return b"$" + payload + b"#%02x" % (sum(payload) & 0xFF)


class RspClient:
    """A minimal RSP client: no-ack mode, one request at a time, console output skipped."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.buf = b""
        self.ack = True
        assert self.request(b"QStartNoAckMode") == b"OK"
        self.ack = False

    def _reply(self):
        while True:
            start = self.buf.find(b"$")
            end = self.buf.find(b"#", start + 1) if start >= 0 else -1
            if start >= 0 and end >= 0 and len(self.buf) >= end + 3:
                body = self.buf[start + 1:end]
                self.buf = self.buf[end + 3:]
                if self.ack:
                    self.sock.sendall(b"+")
                if body.startswith(b"O") and body != b"OK":
                    continue
                return body
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk

    def request(self, payload):
        self.sock.sendall(packet(payload))
        return self._reply()

    def close(self):
        self.sock.close()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def sanitizer_server(files, *extra, vmlinux=None):
    srv = gdbtest.Server(files, *extra, vmlinux=vmlinux, timeout=120)
    san = os.path.join(gdbtest.BUILD, "san", "vmcore-gdbserver")
    if os.access(san, os.X_OK) and not os.environ.get("VMCORE_GDBSERVER_WRAP"):
        srv.args[srv.args.index(gdbtest.server_binary())] = san
    return srv


def baseline(client, addresses):
    """What a well-behaved client reads: thread list, registers of thread 1, memory at addresses."""
    answers = [client.request(b"qfThreadInfo"), client.request(b"Hg1"), client.request(b"g")]
    answers += [client.request(b"m%x,1000" % a) for a in addresses]
    return answers


def kernel_addresses(client):
    """Kernel addresses to read: the CPU's gs_base area and its stack pointer's page."""
    regs = client.request(b"g").decode()
    rsp = int.from_bytes(bytes.fromhex(regs[7 * 16:8 * 16]), "little")
    return [rsp & ~0xFFF]


def test_vanishing_and_storming_clients_do_not_disturb_others(samples):
    dump = samples.dump(scenario="busy", format="kdump", compression="zlib", dump_level=31)
    with sanitizer_server(dump["files"], vmlinux=samples.vmlinux) as srv:
        good = RspClient(srv.port)
        good.request(b"Hg1")
        addresses = kernel_addresses(good)
        before = baseline(good, addresses)

        # Vanish mid-packet, mid-escape and right after a request for a large reply.
        for partial in (b"$m", b"$qXfer:threads:read::0,fff", b"$m1234}", b"$" + b"x" * 70000):
            with socket.create_connection(("127.0.0.1", srv.port)) as s:
                s.sendall(partial)
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.sendall(packet(b"QStartNoAckMode") + packet(b"qXfer:threads:read::0,ffff")
                      + packet(b"m%x,10000" % addresses[0]))
            s.close()

        # A storm: thousands of pipelined requests, read slowly, while the good client works.
        storm = socket.create_connection(("127.0.0.1", srv.port))
        storm.sendall(packet(b"QStartNoAckMode"))
        requests = [packet(b"qfThreadInfo"), packet(b"m%x,4000" % addresses[0]), packet(b"g"),
                    packet(b"qThreadExtraInfo,1"), packet(b"Z0,ffffffff81000000,1"),
                    packet(b"M%x,1:00" % addresses[0]), packet(b"X%x,0:" % addresses[0])]
        stop = threading.Event()

        def pump():
            try:
                for i in range(3000):
                    if stop.is_set():
                        break
                    storm.sendall(requests[i % len(requests)])
            except OSError:
                pass

        sender = threading.Thread(target=pump)
        sender.start()
        during = baseline(good, addresses)
        received = 0
        storm.settimeout(30)
        while received < 200000:
            chunk = storm.recv(1 << 16)
            if not chunk:
                break
            received += len(chunk)
        stop.set()
        storm.close()
        sender.join()
        after = baseline(good, addresses)
        good.close()
        assert srv.alive()
        assert before == during == after, "answers changed under hostile load"
        assert all(not a.startswith(b"E") for a in before), before[:3]
    stderr = "".join(srv.stderr_lines)
    assert "Sanitizer" not in stderr and "runtime error" not in stderr, stderr[-4000:]


def gdb_soak_loop(target, vmlinux, deadline, results):
    # $rsp is a void *, on which gdb refuses `&`: the cast makes the 4 KiB read happen.
    commands = gdbtest.kaslr_setup(vmlinux) + ["thread apply all bt 3", "thread 1",
                                              "x/512gx (unsigned long)$rsp & ~0xfff", "info threads"]
    argv = gdbtest.gdb_command(target, commands, vmlinux=vmlinux)
    outputs = []
    while time.monotonic() < deadline:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           errors="replace", timeout=600)
        outputs.append(p.stdout)
    results.append(outputs)


def test_soak_clients_agree_and_rss_stays_flat(samples):
    dump = samples.dump(scenario="busy", format="kdump", compression="zlib", dump_level=31)
    with gdbtest.Server(dump["files"], vmlinux=samples.vmlinux, timeout=120) as srv:
        warm = RspClient(srv.port)
        warm.request(b"qXfer:threads:read::0,ffff")
        warm.close()
        rss_start = rss_kib(srv.proc.pid)
        deadline = time.monotonic() + SOAK_SECONDS
        results = []
        workers = [threading.Thread(target=gdb_soak_loop,
                                    args=(srv.target(), samples.vmlinux, deadline, results))
                   for _ in range(SOAK_CLIENTS)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        rss_end = rss_kib(srv.proc.pid)
        assert srv.alive()
    runs = [out for outputs in results for out in outputs]
    figures = (f"soak: {SOAK_CLIENTS} gdb clients for {SOAK_SECONDS:.0f} s, {len(runs)} sessions, "
               f"server RSS {rss_start} KiB at start, {rss_end} KiB at end\n")
    # pytest hides a passing test's output: `make soak` prints this file.
    os.makedirs(os.path.join(gdbtest.BUILD, "tests"), exist_ok=True)
    with open(os.path.join(gdbtest.BUILD, "tests", "soak.txt"), "w") as f:
        f.write(figures)
    assert len(results) == SOAK_CLIENTS and all(results), "a client completed no session"
    # Thread lists, backtraces and memory must be identical across clients and over time.
    first = runs[0]
    assert "Thread 1" in first and "#0" in first, first[-3000:]
    rows = re.findall(r"^0x[0-9a-f]+(?: <[^>]*>)?:\s+0x[0-9a-f]{16}\s+0x[0-9a-f]{16}$", first, re.M)
    assert len(rows) == 256, f"the 4 KiB stack read printed {len(rows)} rows, not 256:\n{first[-3000:]}"
    for out in runs[1:]:
        assert out == first, "answers differ between sessions"
    assert rss_end <= rss_start * 1.5 + 32 * 1024, f"RSS grew from {rss_start} to {rss_end} KiB"


def test_clients_cannot_reach_the_file_system(samples):
    """Only the dump and vmlinux the user named are served: no vFile, no other path."""
    dump = samples.dump(scenario="sysrq", format="kdump", compression="zlib", dump_level=31)
    with gdbtest.Server(dump["files"], vmlinux=samples.vmlinux) as srv:
        c = RspClient(srv.port)
        passwd = "/etc/passwd".encode().hex().encode()
        for req in (b"vFile:setfs:0", b"vFile:open:" + passwd + b",0,0", b"vFile:pread:0,100,0",
                    b"qXfer:auxv:read::0,1000", b"qXfer:libraries-svr4:read::0,1000"):
            reply = c.request(req)
            assert reply == b"" or reply.startswith(b"E"), (req, reply)
        exec_file = c.request(b"qXfer:exec-file:read::0,1000")
        assert exec_file[1:].decode() == os.path.realpath(samples.vmlinux) or \
            exec_file[1:].decode() == samples.vmlinux, exec_file
        c.close()


def test_listening_beyond_loopback_warns(samples):
    dump = samples.dump(scenario="sysrq", format="kdump", compression="zlib", dump_level=31)
    srv = gdbtest.Server(dump["files"], vmlinux=samples.vmlinux)
    srv.args[srv.args.index("127.0.0.1:0")] = "0.0.0.0:0"
    with srv:
        pass
    stderr = "".join(srv.stderr_lines)
    assert re.search(r"warning.*secret", stderr, re.I | re.S), stderr
    with gdbtest.Server(dump["files"], vmlinux=samples.vmlinux) as local:
        pass
    assert "secret" not in "".join(local.stderr_lines)
