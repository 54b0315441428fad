"""The skb and socket helpers (gdbscripts/vmcore/skb.py: vskb, vnet) through vmcore-gdbserver and
a real gdb on the sample dumps, checked against the scenario ground truth."""
import re

from gdbscripts_common import pick, scripts

FRAG = re.compile(r"^  frag\[(\d+)\] page (0x[0-9a-f]+)(?: \(tail of compound page (0x[0-9a-f]+)\))? "
                  r"offset (\d+) size (\d+) -> (0x[0-9a-f]+): (.*)$", re.M)


def test_task_sockets_header_and_bad_skb(samples):
    """vnet -s finds the panicking task by PID (header from its task_struct); a bad sk_buff
    address is an error naming it."""
    dump = pick(samples, "sysrq")
    truth = samples.truth(dump)
    out = scripts(samples, dump, ["vnet -s %d" % truth["pid"], "vskb 0x10"])
    task = int(truth["panic_task"], 16)
    assert 'PID: %d  TASK: %x  COMMAND: "%s"' % (truth["pid"], task, truth["comm"]) in out, out
    assert "cannot read struct sk_buff at 0x10" in out, out[-2000:]


def test_skb_frag_in_kmalloc_512_object(samples):
    """The skb on the reader's TCP receive queue has a page frag that is a kmalloc-512 object,
    768 bytes long: the helper names the page, its compound head, offset, size, the cache and
    the object, and that the frag runs past the object's end."""
    dump = pick(samples, "skb-slab-frag")
    truth = samples.truth(dump)
    skb = int(truth["skb"], 16)
    out = scripts(samples, dump, ["vskb 0x%x" % skb])
    assert re.search(r"^sk_buff 0x%x: len %d data_len %d truesize %d users \d+ sk %s "
                     % (skb, truth["len"], truth["data_len"], truth["truesize"], truth["sock"]),
                     out, re.M), out[-3000:]
    assert re.search(r"nr_frags %d " % truth["nr_frags"], out), out[-3000:]
    frags = FRAG.findall(out)
    assert len(frags) == truth["nr_frags"], out[-3000:]
    _, page, head, offset, size, vaddr, where = frags[0]
    assert int(page, 16) == int(truth["frag_page"], 16)
    assert int(head or page, 16) == int(truth["frag_page_head"], 16), frags[0]
    assert (int(offset), int(size)) == (truth["frag_offset"], truth["frag_size"])
    match = re.match(r"in (\S+) object (0x[0-9a-f]+) \(\+(\d+), (\w+)\)", where)
    assert match, where
    assert match.group(1) == truth["slab_cache_name"] == "kmalloc-512", where
    assert int(match.group(2), 16) == int(truth["slab_object"], 16), where
    assert int(vaddr, 16) == int(match.group(2), 16) + int(match.group(3))
    assert "run %d past the object's end (object size %d)" % (
        int(match.group(3)) + truth["frag_size"] - truth["slab_object_size"],
        truth["slab_object_size"]) in where, where


def test_reader_socket_and_receive_queue(samples):
    """The panicking task is the reader: vnet -s (by default and by PID) lists its TCP socket
    (the truth's sock) and vnet -q finds the truth's skb on that socket's receive queue."""
    dump = pick(samples, "skb-slab-frag")
    truth = samples.truth(dump)
    out = scripts(samples, dump, ["vnet -s", "vnet -s %d" % truth["pid"], "vnet -q %s" % truth["sock"]])
    # Without an argument: the current task of the selected thread (gdb selects the panic CPU).
    assert out.count('PID: %d  TASK: %x  COMMAND: "%s"' % (truth["pid"], int(truth["panic_task"], 16),
                                                          truth["comm"])) == 2, out[-3000:]
    rows = re.findall(r"^\s*(\d+) ([0-9a-f]{16}) ([0-9a-f]{16}) (INET6?:STREAM)\s+(\S+) (\S+)\s+(\d+)$",
                      out, re.M)
    socks = {int(sk, 16): (ends_src, ends_dst, int(qlen)) for _, _, sk, _, ends_src, ends_dst, qlen in rows}
    sock = int(truth["sock"], 16)
    assert sock in socks, out[-3000:]
    src, dst, qlen = socks[sock]
    assert qlen >= 1 and src.rsplit("-", 1)[0].endswith("127.0.0.1"), socks[sock]
    assert re.search(r"^  sk_buff %s len %d data_len %d nr_frags %d "
                     % (truth["skb"], truth["len"], truth["data_len"], truth["nr_frags"]),
                     out, re.M), out[-3000:]
