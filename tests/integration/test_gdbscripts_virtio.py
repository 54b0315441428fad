"""The virtio helper (gdbscripts/vmcore/virtio.py: vvirtio) through vmcore-gdbserver and a real
gdb on the sample dumps.  Devices are checked against what the crashed kernel logged on the
serial console; the virtio-bug scenario's virtqueues against the values its module printed, on a
split ring (virtio-bug-l5) and on a packed one (virtio-packed-l5)."""
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


def run_dump(samples, run):
    """A compressed kdump of the run if there is one, else any of its dumps."""
    found = samples.dumps(run=run, format="kdump") or samples.dumps(run=run)
    if not found:
        pytest.skip("no dump of run %s in %s" % (run, samples.path))
    return found[0]


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
    dump = run_dump(samples, "virtio-bug-l5")
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


PACKED_EVENT_FLAGS = {0: "enable", 1: "disable", 2: "desc"}


def packed_vq_lines(vq):
    """The lines vvirtio must print for a packed virtqueue, from the module's truth for it: the
    stored last_used_idx split into index and used wrap counter (bit 15), the driver and device
    event structures, and whether the descriptor at last_used_idx is used.  The flags line is a
    prefix (event_triggered and we_own_ring are not in the truth)."""
    def event(side):
        flags, off_wrap = vq[side + "_event_flags"], vq[side + "_event_off_wrap"]
        return "%s event flags 0x%x (%s) off_wrap 0x%x (off %d wrap %d)" % (
            side, flags, PACKED_EVENT_FLAGS[flags], off_wrap, off_wrap & 0x7fff, off_wrap >> 15)

    return [
        "vq %s %s index %d (packed): num %d num_free %d free_head %d num_added %d last_used_idx %d "
        "used_wrap_counter %d (stored 0x%04x)" % (
            vq["vq"], vq["vq_name"], vq["vq_index"], vq["vring_num"], vq["num_free"],
            vq["free_head"], vq["num_added"], vq["last_used"], vq["used_wrap_counter"],
            vq["last_used_idx"]),
        "next_avail_idx %d avail_wrap_counter %d avail_used_flags 0x%04x event_flags_shadow 0x%x"
        "  used pending %s (desc[%d] flags 0x%04x)" % (
            vq["next_avail_idx"], vq["avail_wrap_counter"], vq["avail_used_flags"],
            vq["event_flags_shadow"], "yes" if vq["used_pending"] else "no", vq["last_used"],
            vq["last_used_desc_flags"]),
        "indirect %d event %d broken 0 " % (vq["indirect"], vq["event"]),
        "ring desc %s driver %s device %s" % (vq["vring_desc"], vq["vring_driver"],
                                               vq["vring_device"]),
        event("driver"),
        event("device"),
    ]


def vq_block(text, addr):
    """The stripped lines of vvirtio's entry for the virtqueue at addr (a "0x..." string)."""
    lines = text.split("vq %s " % addr, 1)[1].splitlines()
    block = ["vq %s %s" % (addr, lines[0].strip())]
    for line in lines[1:]:
        if not line.startswith("  ") or line.lstrip().startswith("vq 0x"):
            break
        block.append(line.strip())
    return block


def assert_packed_block(text, vq):
    expected = packed_vq_lines(vq)
    block = vq_block(text, vq["vq"])
    assert len(block) == len(expected), (expected, block)
    for want, got in zip(expected, block):
        assert got.startswith(want) if want.endswith(" ") else got == want, (want, got)


def test_virtio_packed_virtqueue_values(samples):
    """virtio-net on a packed ring (QEMU packed=on): the transmit virtqueue the BUG()ing function
    held, decoded with vvirtio -q, and every virtqueue of the device as vvirtio lists them,
    each printed value equal to what the module read from the live kernel."""
    dump = run_dump(samples, "virtio-packed-l5")
    truth = samples.truth(dump)
    assert truth["packed_ring"] is True, truth
    queues = truth["device_vqs"]
    # The sample's rings are on different laps (300 pings wrapped the 256-entry rings, the
    # 64-entry control ring did not), so both values of the wrap counters are decoded.
    assert {q["used_wrap_counter"] for q in queues} == {0, 1}, queues
    assert any(q["last_used_idx"] != q["last_used"] for q in queues), queues
    out = scripts(samples, dump, ["vvirtio -q " + truth["vq"], "echo @@LIST@@\\n", "vvirtio"])
    decoded, listing = out.split("@@LIST@@\n")
    assert "virtio_device %s " % truth["vdev"] in decoded, decoded
    assert_packed_block(decoded, truth)
    device = listing.split("virtio_device %s " % truth["vdev"], 1)[1].split("\nvirtio", 1)[0]
    assert [(v[0], v[1], v[3]) for v in VQ.findall(device)] == \
        [(q["vq"], q["vq_name"], "packed") for q in queues], device
    for vq in queues:
        assert_packed_block(device, vq)
