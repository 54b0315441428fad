"""Large memory reads through the stub, as bulk readers send them: `m` (gdb) and `x` (LLDB)
replies of many pages carry the same bytes as page-by-page physical reads, a read that runs
into a page the dump left out stops exactly at that page (gdb then shows the error for it), a
client that does not read its replies does not grow the server, and on --stdio the stub lets go
of stderr once set up (gdb would otherwise poll it once per received character).

gdb 13's Python cannot return binary `x` replies, so the packets go through a small raw client
on the stub's stdio transport; gdb itself reads across the excluded page at the end."""
import json
import os
import re
import socket
import subprocess
import time

import pytest

import gdbtest
from gdbtest import gdb_batch, server_args, server_binary, stdio_target


class RawClient:
    """The stub on a pipe, spoken to packet by packet in no-ack mode."""

    def __init__(self, files, *extra):
        self.proc = subprocess.Popen(server_args(files, "--stdio", *extra), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.noack = False
        assert self.packet("QStartNoAckMode") == b"OK"
        self.noack = True

    def packet(self, text):
        body = text.encode()
        self.proc.stdin.write(b"$%s#%02x" % (body, sum(body) & 0xFF))
        self.proc.stdin.flush()
        return self.packet_reply()

    def packet_reply(self):
        out = self.proc.stdout
        while (ch := out.read(1)) != b"$":
            assert ch, "stub closed the connection"
        reply = bytearray()
        while (ch := out.read(1)) != b"#":
            assert ch, "stub closed the connection"
            reply += ch
        checksum = out.read(2)
        assert int(checksum, 16) == sum(reply) & 0xFF, (bytes(reply[:80]), checksum)
        if not self.noack:
            self.proc.stdin.write(b"+")
        assert b"*" not in reply  # the stub never run-length encodes
        return bytes(reply)

    def read(self, kind, addr, length):
        """Data of an m or x reply, or the error reply as a str."""
        reply = self.packet("%s%x,%x" % (kind, addr, length))
        if re.fullmatch(rb"E[0-9a-f]{2}", reply):
            return reply.decode()
        if kind == "m":
            return bytes.fromhex(reply.decode())
        return re.sub(rb"}(.)", lambda m: bytes([m[1][0] ^ 0x20]), reply, flags=re.S)

    def physical(self, pa, length):
        """Page by page in physical mode, the reference for the virtual reads; None if a page fails."""
        assert self.packet("Qqemu.PhyMemMode:1") == b"OK"
        pages = [self.read("m", p, 0x1000) for p in range(pa, pa + length, 0x1000)]
        assert self.packet("Qqemu.PhyMemMode:0") == b"OK"
        return None if any(isinstance(p, str) for p in pages) else b"".join(pages)

    def monitor(self, command):
        """Console output of a monitor command (O packets before the final reply)."""
        text = b""
        reply = self.packet("qRcmd," + command.encode().hex())
        while reply.startswith(b"O") and reply != b"OK":
            text += bytes.fromhex(reply[1:].decode())
            reply = self.packet_reply()
        return text.decode()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(30)


def page_offset(samples, dump):
    out = subprocess.run([server_binary(), "info", "--json", "--vmlinux", samples.vmlinux, *dump["files"]],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert out.returncode == 0, out.stdout
    return int(json.loads(out.stdout)["page_offset"], 16)


def test_many_pages_in_one_reply_match_physical_reads(samples):
    """The longest replies the stub sends, through the direct map (large pages), on an ELF dump."""
    dump = samples.dump(format="elf", scenario="busy")
    base = page_offset(samples, dump)
    c = RawClient(dump["files"], "--vmlinux", samples.vmlinux)
    try:
        # 64 KiB of real memory (not zeros): the first such run at a MiB boundary.
        for pa in range(0x100000, 0x40000000, 0x100000):
            phys = c.physical(pa, 0x10000)
            if phys and len(set(phys)) > 64:
                break
        else:
            pytest.fail("no 64 KiB of varied memory below 1 GiB")
        va = base + pa
        assert c.packet("x%x,0" % va) == b"OK"  # LLDB's probe for `x`
        m = c.read("m", va, 0x10000)
        x = c.read("x", va, 0x10000)
    finally:
        c.close()
    # More than a reply holds is asked: the stub answers a prefix, the same for both packets.
    assert 0x8000 <= len(m) < 0x10000
    assert m == phys[:len(m)]
    assert x == phys[:len(x)]
    assert len(x) == len(m)


def test_read_into_an_excluded_page_stops_at_it(samples):
    found = [d for d in samples.dumps(dump_level=31) if d["format"] == "kdump"]
    if not found:
        pytest.skip("no dump-level-31 kdump in the samples yet")
    dump = found[0]
    base = page_offset(samples, dump)
    c = RawClient(dump["files"], "--vmlinux", samples.vmlinux)
    try:
        assert c.packet("Qqemu.PhyMemMode:1") == b"OK"
        excluded = next((pa for pa in range(0x1003000, 0x10000000, 0x1000)
                         if isinstance(c.read("m", pa, 8), str)), None)
        assert c.packet("Qqemu.PhyMemMode:0") == b"OK"
        assert excluded, "no excluded page between 16 and 256 MiB"
        start = excluded - 0x3000
        phys = c.physical(start, 0x3000)
        # 16 KiB asked, 12 KiB readable: both replies hold exactly the pages before the excluded one.
        assert c.read("m", base + start, 0x4000) == phys
        assert c.read("x", base + start, 0x4000) == phys
        assert isinstance(c.read("m", base + excluded, 0x10), str)
        assert "excluded" in c.monitor("last-error")
    finally:
        c.close()
    c = RawClient(dump["files"], "--vmlinux", samples.vmlinux, "--zero-excluded")
    try:
        data = c.read("x", base + start, 0x4000)
    finally:
        c.close()
    assert data == phys + bytes(0x1000)
    # gdb shows the bytes before the page, then the error at the page's address.
    va = base + excluded - 4
    out = gdb_batch(stdio_target(dump["files"], vmlinux=samples.vmlinux), [f"x/2wx {va:#x}"])
    assert f"{va:#x}:" in out, out
    assert f"Cannot access memory at address {va + 4:#x}" in out, out


def test_client_that_reads_no_replies_does_not_grow_the_server(samples):
    """Thousands of pipelined 64 KiB reads in one burst, replies left unread: the server answers
    until its output reaches a bound, holds the rest of the requests unparsed, and answers them
    all once the client reads (before, one 64 KiB burst of requests cost 340 MB of replies)."""
    dump = samples.dump(format="elf", scenario="busy")
    va = page_offset(samples, dump) + 0x100000
    request = b"m%x,10000" % va
    request = b"$%s#%02x" % (request, sum(request) & 0xFF)
    count = 3 * (1 << 16) // len(request)
    with gdbtest.Server(dump["files"], vmlinux=samples.vmlinux) as srv:
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=60)
        try:
            sock.sendall(b"$QStartNoAckMode#b0")
            assert sock.recv(16).startswith(b"+$OK#")
            sock.sendall(request * count)
            time.sleep(2)
            with open(f"/proc/{srv.proc.pid}/status") as f:
                rss_kib = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
            assert rss_kib < 150 * 1024, rss_kib  # replies of all requests: about 950 MB
            replies, buf = 0, b""
            while replies < count:
                chunk = sock.recv(1 << 20)
                assert chunk, f"connection closed after {replies} of {count} replies"
                buf += chunk
                while (end := buf.find(b"#")) >= 0 and len(buf) >= end + 3:
                    assert buf.startswith(b"$") and end == 1 + 2 * 0xfff0, buf[:80]
                    replies, buf = replies + 1, buf[end + 3:]
        finally:
            sock.close()
        assert srv.alive()


def stdio_session(dump, vmlinux, *extra):
    """The stub on --stdio with its stderr on a socket, as gdb's `target remote |` runs it."""
    io, io_child = socket.socketpair()
    err, err_child = socket.socketpair()
    proc = subprocess.Popen(server_args(dump["files"], "--stdio", *extra, vmlinux=vmlinux),
                            stdin=io_child, stdout=io_child, stderr=err_child)
    io_child.close()
    err_child.close()
    return proc, io, err


def stderr_closed_after_stop_reply(dump, vmlinux, *extra):
    """Whether the stub's stderr reaches its end once the session is set up (`?` answered)."""
    proc, io, err = stdio_session(dump, vmlinux, *extra)
    try:
        io.sendall(b"$?#3f")
        reply = b""
        while b"#" not in reply:
            chunk = io.recv(4096)
            assert chunk, "stub closed the connection"
            reply += chunk
        assert b"$T05" in reply or b"$S05" in reply, reply
        io.sendall(b"$m0,1#fa")  # one more request: the stub has looped once since the `?`
        io.recv(4096)
        err.settimeout(5)
        try:
            while err.recv(4096):
                pass
            return True
        except socket.timeout:
            return False
    finally:
        io.close()
        err.close()
        proc.wait(30)


def test_stdio_lets_go_of_stderr_once_set_up(samples):
    """gdb polls a `target remote |` command's stderr with a read() per received character while
    it is open: the stub closes it once the thread list is built, except with --debug (and in
    sanitizer builds, whose reports go there)."""
    dump = samples.dump(format="elf", scenario="busy")
    if os.path.basename(os.path.dirname(server_binary())) == "san":
        pytest.skip("sanitizer build keeps stderr")
    assert stderr_closed_after_stop_reply(dump, samples.vmlinux)
    assert not stderr_closed_after_stop_reply(dump, samples.vmlinux, "--debug")
