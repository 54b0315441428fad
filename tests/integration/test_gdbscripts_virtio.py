"""The virtio helper (gdbscripts/vmcore/virtio.py: vvirtio) through vmcore-gdbserver and a real
gdb on the sample dumps.  Devices are checked against what the crashed kernel logged on the
serial console; the virtio-bug scenario's virtqueue against the values its module printed."""
import re

import pytest

from gdbscripts_common import pick, scripts

DEVICE = re.compile(r"^(virtio\d+) virtio_device (0x[0-9a-f]+) device id (\d+) vendor 0x[0-9a-f]+ "
                    r"driver (\S+)", re.M)
VQ = re.compile(r"^\s*vq (0x[0-9a-f]+) (\S+) index (\d+) \((split|packed)\)", re.M)


def first_kernel_blk_queues(serial_log):
    """Request queues of the crashed kernel's virtio_blk, from its first boot-log line
    `virtio_blk virtioN: Q/0/0 default/read/poll queues` (the capture kernel logs later)."""
    with open(serial_log, errors="replace") as f:
        match = re.search(r"virtio_blk (virtio\d+): (\d+)/\d+/\d+ default/read/poll queues", f.read())
    if not match:
        pytest.skip("the serial log has no virtio_blk queue line")
    return match.group(1), int(match.group(2))


def vq_fields(text):
    """Every 'name value' pair of vvirtio's virtqueue lines as {name: int}."""
    fields = {}
    for name, value in re.findall(r"\b([a-z_]+(?: idx)?) (\d+)\b", text):
        fields.setdefault(name.replace(" ", "_"), int(value))
    return fields


def test_devices_and_queues_match_the_boot_log(samples):
    dump = pick(samples, "sysrq")
    scenario = samples.manifest["scenarios"][dump["run"]]
    if "serial_log" not in scenario:
        pytest.skip("the manifest gives no serial log for %s" % dump["run"])
    name, queues = first_kernel_blk_queues(scenario["serial_log"])
    out = scripts(samples, dump, ["vvirtio"])
    devices = {m[0]: (int(m[2]), m[3]) for m in DEVICE.findall(out)}
    assert devices.get(name) == (2, "virtio_blk"), out
    blk = out.split(name + " virtio_device", 1)[1].split("\nvirtio", 1)[0]
    vqs = VQ.findall(blk)
    assert [(vq[1], int(vq[2])) for vq in vqs] == [("req.%d" % i, i) for i in range(queues)], blk
    first = vqs[0][0]
    listed = vq_fields(blk.split("vq " + first, 1)[1].split("\n  vq ", 1)[0])
    decoded = vq_fields(scripts(samples, dump, ["vvirtio -q " + first]).split("vq " + first, 1)[1])
    assert decoded == listed, (listed, decoded)
    assert decoded["num"] in (64, 128, 256, 512, 1024) and 0 <= decoded["num_free"] <= decoded["num"]


def test_missing_vring_type_is_explained(samples):
    dump = pick(samples, "sysrq")
    out = scripts(samples, dump, [
        "python [gdb.execute('remove-symbol-file ' + o.filename) for o in gdb.objfiles() "
        "if o.filename.endswith('virtio_ring.ko')]",
        "vvirtio -q 0x1000"])
    assert "struct vring_virtqueue is not in the loaded debug info" in out, out[-2000:]


def test_virtio_bug_virtqueue_values(samples):
    """The transmit virtqueue the BUG()ing function held, decoded from its struct virtqueue *
    with virtio_ring.ko's types, and as listed under its device."""
    dump = pick(samples, "virtio-bug")
    truth = samples.truth(dump)
    vq = int(truth["vq"], 16)
    out = scripts(samples, dump, ["vvirtio -q 0x%x" % vq, "vvirtio"])
    decoded, listing = out.split("vq 0x%x" % vq)[1:3]
    expected = {"index": truth["vq_index"], "num": truth["vring_num"],
                "num_free": truth["num_free"], "free_head": truth["free_head"],
                "avail_idx": truth["avail_idx"], "used_idx": truth["used_idx"],
                "last_used_idx": truth["last_used_idx"], "indirect": int(truth["indirect"])}
    for text in (decoded, listing.split("\n  vq ")[0]):
        fields = vq_fields(text)
        assert {k: fields.get(k) for k in expected} == expected, (expected, text)
        assert text.startswith(" %s index %d (%s)" % (truth["vq_name"], truth["vq_index"],
                                                       "packed" if truth["packed_ring"] else "split"))
        assert "ring desc %s avail %s used %s" % (truth["vring_desc"], truth["vring_avail"],
                                                  truth["vring_used"]) in text, text
    assert "virtio_device %s " % truth["vdev"] in out, out
