"""The skb and socket helpers (gdbscripts/vmcore/skb.py: vskb, vnet) through vmcore-gdbserver and
a real gdb on the sample dumps, checked against the scenario ground truth."""
import os
import re

import pytest

from gdbtest import ROOT, Samples, gdb_batch, stdio_target

ENTRY = os.path.join(ROOT, "gdbscripts", "vmcore_gdb.py")
FRAG = re.compile(r"^  frag\[(\d+)\] page (0x[0-9a-f]+)(?: \(tail of compound page (0x[0-9a-f]+)\))? "
                  r"offset (\d+) size (\d+) -> (0x[0-9a-f]+): (.*)$", re.M)


@pytest.fixture(scope="module")
def samples():
    return Samples.load()


def pick(samples, scenario):
    for fmt in ("kdump", "elf"):
        found = samples.dumps(scenario=scenario, format=fmt)
        if found:
            return found[0]
    return samples.dump(scenario=scenario)


def scripts(samples, dump, commands, timeout=600):
    return gdb_batch(stdio_target(dump["files"]), ["source " + ENTRY] + list(commands),
                     vmlinux=samples.vmlinux, timeout=timeout)


def test_task_sockets_header_and_bad_skb(samples):
    """vnet -s finds the panicking task by PID (header from its task_struct); a bad sk_buff
    address is an error naming it."""
    dump = pick(samples, "sysrq")
    truth = samples.truth(dump)
    out = scripts(samples, dump, ["vnet -s %d" % truth["pid"], "vskb 0x10"])
    task = int(truth["panic_task"], 16)
    assert 'PID: %d  TASK: %x  COMMAND: "%s"' % (truth["pid"], task, truth["comm"]) in out, out
    assert "cannot read struct sk_buff at 0x10" in out, out[-2000:]


def hex_value(truth, *keys):
    for key in keys:
        value = truth.get(key)
        if isinstance(value, str) and value.startswith("0x"):
            return int(value, 16)
    return None


def test_skb_frag_in_kmalloc_512_object(samples):
    dump = pick(samples, "skb-slab-frag")
    truth = samples.truth(dump)
    skb = hex_value(truth, "skb", "skb_addr", "sk_buff")
    if skb is None:
        pytest.fail("skb-slab-frag truth names no sk_buff: %s" % sorted(truth))
    out = scripts(samples, dump, ["vskb 0x%x" % skb])
    frags = FRAG.findall(out)
    assert frags, out[-3000:]
    index = int(truth.get("frag_index", 0))
    _, page, _, offset, size, vaddr, where = frags[index]
    expected_page = hex_value(truth, "frag_page", "page")
    if expected_page is not None:
        assert int(page, 16) == expected_page, out
    for key, shown in (("frag_offset", offset), ("frag_size", size), ("frag_len", size)):
        if key in truth:
            assert int(shown) == int(truth[key]), (key, out)
    cache = truth.get("frag_cache", "kmalloc-512")
    match = re.match(r"in (\S+) object (0x[0-9a-f]+) \(\+(\d+), (\w+)\)", where)
    assert match and match.group(1) == cache, where
    expected_object = hex_value(truth, "frag_object", "kmalloc_object", "object", "buf")
    if expected_object is not None:
        assert int(match.group(2), 16) == expected_object, where
        assert int(vaddr, 16) - int(match.group(2), 16) == int(match.group(3)), where
