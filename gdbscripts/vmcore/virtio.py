"""virtio devices and their virtqueues.

Devices are found on the virtio bus: virtio_bus.p->klist_devices holds the
struct device_private of each device (linked through knode_bus), whose
->device is the struct device embedded in struct virtio_device (member dev).
Each device's virtqueues are on vdev->vqs (struct virtqueue.list), and a
struct virtqueue is the first member (vq) of struct vring_virtqueue, a type
private to virtio_ring.c: its layout comes from virtio_ring.ko's debug info,
which the setup helper's vmcore-setup loads.

Packed rings (VIRTIO_F_RING_PACKED): 6.1 keeps the used wrap counter in bit 15
of last_used_idx, so that value is shown as index and wrap counter; the
driver and device event suppression structures are read from the ring, and
"used pending" tells whether the descriptor at last_used_idx is used, as
virtqueue_get_buf would see it.

Commands: vvirtio [-v]       list devices and virtqueues
          vvirtio -q VQ      decode one struct virtqueue * as vring_virtqueue
"""

import gdb

from . import percpu


def _container_of(addr, struct_name, member):
    gtype = percpu.lookup_struct(struct_name)
    offset = percpu.field_offset(gtype, member)
    return gdb.Value(addr - offset).cast(gtype.pointer())


def _list_entries(head_addr, struct_name, member):
    """Entries (gdb.Value pointers) of a list_head list."""
    out = []
    entry = percpu.read_u64(head_addr)
    seen = set()
    while entry != head_addr:
        if not entry or entry in seen or len(out) > 100000:
            raise gdb.GdbError("list at 0x%x is broken or loops at 0x%x" % (head_addr, entry))
        seen.add(entry)
        out.append(_container_of(entry, struct_name, member))
        entry = percpu.read_u64(entry)
    return out


def _string(pointer):
    return percpu.read_cstring(int(pointer)) if int(pointer) else ""


def virtio_devices():
    """struct virtio_device * values on the virtio bus, in bus order."""
    try:
        bus = gdb.parse_and_eval("virtio_bus")
    except gdb.error:
        raise gdb.GdbError("symbol virtio_bus is not loaded: the virtio module's symbols are "
                           "missing (run vmcore-setup) or virtio is not in this kernel")
    private = bus["p"]
    if not int(private):
        return []
    head = int(private["klist_devices"]["k_list"].address)
    devices = []
    for priv in _list_entries(head, "device_private", "knode_bus.n_node"):
        dev = int(priv["device"])
        devices.append(_container_of(dev, "virtio_device", "dev"))
    return devices


def vring_type():
    try:
        return gdb.lookup_type("struct vring_virtqueue")
    except gdb.error:
        raise gdb.GdbError("struct vring_virtqueue is not in the loaded debug info: it is "
                           "private to virtio_ring.ko, so load that module's debug symbols "
                           "(vmcore-setup does this)")


def virtqueues(vdev):
    head = int(vdev["vqs"].address)
    return _list_entries(head, "virtqueue", "list")


def _u16(value):
    """A __virtio16 ring field (little endian on x86, legacy or modern)."""
    return int(value) & 0xffff


def decode_vq(vq_addr):
    """dict describing the vring_virtqueue around struct virtqueue * vq_addr."""
    try:
        return _decode_vq(vq_addr)
    except gdb.MemoryError as err:
        raise gdb.GdbError("cannot read struct vring_virtqueue at 0x%x: %s" % (vq_addr, err))


def _decode_vq(vq_addr):
    vvq = gdb.Value(vq_addr).cast(vring_type().pointer()).dereference()
    vq = vvq["vq"]
    info = {
        "addr": vq_addr,
        "name": _string(vq["name"]),
        "index": int(vq["index"]),
        "num_free": int(vq["num_free"]),
        "packed": bool(vvq["packed_ring"]),
        "broken": bool(vvq["broken"]),
        "indirect": bool(vvq["indirect"]),
        "event": bool(vvq["event"]),
        "free_head": int(vvq["free_head"]),
        "num_added": int(vvq["num_added"]),
        "last_used_idx": int(vvq["last_used_idx"]),
        "we_own_ring": bool(vvq["we_own_ring"]),
    }
    if "event_triggered" in [f.name for f in vring_type().fields()]:
        info["event_triggered"] = bool(vvq["event_triggered"])
    if info["packed"]:
        _decode_packed(vvq["packed"], info)
    else:
        ring = vvq["split"]
        vring = ring["vring"]
        info["num"] = int(vring["num"])
        info["desc"] = int(vring["desc"])
        info["avail"] = int(vring["avail"])
        info["used"] = int(vring["used"])
        info["avail_idx_shadow"] = int(ring["avail_idx_shadow"])
        info["avail_flags_shadow"] = int(ring["avail_flags_shadow"])
        try:
            info["avail_idx"] = _u16(vring["avail"].dereference()["idx"])
            info["avail_flags"] = _u16(vring["avail"].dereference()["flags"])
        except gdb.MemoryError as err:
            info["avail_idx"] = "unreadable (%s)" % err
        try:
            info["used_idx"] = _u16(vring["used"].dereference()["idx"])
            info["used_flags"] = _u16(vring["used"].dereference()["flags"])
        except gdb.MemoryError as err:
            info["used_idx"] = "unreadable (%s)" % err
    return info


# Bit numbers in a packed descriptor's flags, and in last_used_idx / off_wrap
# (include/uapi/linux/virtio_ring.h).
PACKED_DESC_F_AVAIL = 7
PACKED_DESC_F_USED = 15
PACKED_EVENT_F_WRAP_CTR = 15
PACKED_EVENT_FLAGS = {0: "enable", 1: "disable", 2: "desc"}


def _decode_packed(ring, info):
    """The packed ring of a vring_virtqueue.  6.1 keeps the used wrap counter in bit 15 of
    last_used_idx (no field of its own), so the stored value is split here."""
    vring = ring["vring"]
    stored = info["last_used_idx"]
    info["last_used_stored"] = stored
    info["last_used_idx"] = stored & ((1 << PACKED_EVENT_F_WRAP_CTR) - 1)
    info["used_wrap_counter"] = stored >> PACKED_EVENT_F_WRAP_CTR
    info["num"] = int(vring["num"])
    info["desc"] = int(vring["desc"])
    info["driver"] = int(vring["driver"])
    info["device"] = int(vring["device"])
    info["next_avail_idx"] = int(ring["next_avail_idx"])
    info["avail_wrap_counter"] = int(ring["avail_wrap_counter"])
    info["avail_used_flags"] = int(ring["avail_used_flags"])
    info["event_flags_shadow"] = int(ring["event_flags_shadow"])
    for side in ("driver", "device"):
        try:
            event = vring[side].dereference()
            info[side + "_event"] = (_u16(event["flags"]), _u16(event["off_wrap"]))
        except gdb.MemoryError as err:
            info[side + "_event"] = "unreadable (%s)" % err
    # What virtqueue_get_buf would see next (is_used_desc_packed): the descriptor at
    # last_used_idx is used when its AVAIL and USED bits both equal the used wrap counter.
    if info["last_used_idx"] >= info["num"]:
        info["used_pending"] = "last_used_idx is past the ring"
        return
    try:
        flags = _u16(vring["desc"][info["last_used_idx"]]["flags"])
    except gdb.MemoryError as err:
        info["used_pending"] = "unreadable (%s)" % err
        return
    avail = (flags >> PACKED_DESC_F_AVAIL) & 1
    used = (flags >> PACKED_DESC_F_USED) & 1
    info["last_used_desc_flags"] = flags
    info["used_pending"] = avail == used == info["used_wrap_counter"]


def _event_text(event):
    if isinstance(event, str):
        return event
    flags, off_wrap = event
    return "flags 0x%x (%s) off_wrap 0x%x (off %d wrap %d)" % (
        flags, PACKED_EVENT_FLAGS.get(flags, "?"), off_wrap,
        off_wrap & ((1 << PACKED_EVENT_F_WRAP_CTR) - 1), off_wrap >> PACKED_EVENT_F_WRAP_CTR)


def _packed_lines(info, indent):
    first = ("%svq 0x%x %s index %d (packed): num %d num_free %d free_head %d num_added %d "
             "last_used_idx %d used_wrap_counter %d (stored 0x%04x)" % (
                 indent, info["addr"], info["name"], info["index"], info["num"],
                 info["num_free"], info["free_head"], info["num_added"], info["last_used_idx"],
                 info["used_wrap_counter"], info["last_used_stored"]))
    pending = info["used_pending"]
    if isinstance(pending, bool):
        pending = "%s (desc[%d] flags 0x%04x)" % ("yes" if pending else "no",
                                                  info["last_used_idx"],
                                                  info["last_used_desc_flags"])
    second = ("%s  next_avail_idx %d avail_wrap_counter %d avail_used_flags 0x%04x "
              "event_flags_shadow 0x%x  used pending %s" % (
                  indent, info["next_avail_idx"], info["avail_wrap_counter"],
                  info["avail_used_flags"], info["event_flags_shadow"], pending))
    rings = "%s  ring desc 0x%x driver 0x%x device 0x%x" % (indent, info["desc"], info["driver"],
                                                           info["device"])
    events = ["%s  %s event %s" % (indent, side, _event_text(info[side + "_event"]))
              for side in ("driver", "device")]
    return [first, second, _flag_line(info, indent), rings] + events


def _flag_line(info, indent):
    return ("%s  indirect %d event %d broken %d%s we_own_ring %d" % (
        indent, info["indirect"], info["event"], info["broken"],
        (" event_triggered %d" % info["event_triggered"]) if "event_triggered" in info else "",
        info["we_own_ring"]))


def vq_lines(info, indent="  "):
    if info["packed"]:
        return _packed_lines(info, indent)
    first = ("%svq 0x%x %s index %d (split): num %d num_free %d free_head %d num_added %d "
             "last_used_idx %d" % (indent, info["addr"], info["name"], info["index"],
                                   info["num"], info["num_free"], info["free_head"],
                                   info["num_added"], info["last_used_idx"]))
    second = ("%s  avail idx %s (shadow %d, flags 0x%x) used idx %s  pending used %s"
              % (indent, info["avail_idx"], info["avail_idx_shadow"],
                 info["avail_flags_shadow"], info["used_idx"],
                 (info["used_idx"] - info["last_used_idx"]) & 0xffff
                 if isinstance(info["used_idx"], int) else "?"))
    rings = "%s  ring desc 0x%x avail 0x%x used 0x%x" % (indent, info["desc"], info["avail"],
                                                        info["used"])
    return [first, second, _flag_line(info, indent), rings]


def device_info(vdev):
    dev = vdev["dev"]
    driver = dev["driver"]
    return {
        "addr": int(vdev),
        "name": _string(dev["kobj"]["name"]),
        "index": int(vdev["index"]),
        "device_id": int(vdev["id"]["device"]),
        "vendor_id": int(vdev["id"]["vendor"]),
        "driver": _string(driver["name"]) if int(driver) else "(none)",
        "features": int(vdev["features"]),
        "failed": bool(vdev["failed"]),
        "config_enabled": bool(vdev["config_enabled"]),
        "config_change_pending": bool(vdev["config_change_pending"]),
    }


def device_line(info):
    return ("%s virtio_device 0x%x device id %d vendor 0x%x driver %s features 0x%x "
            "failed %d config_enabled %d config_change_pending %d" % (
                info["name"], info["addr"], info["device_id"], info["vendor_id"],
                info["driver"], info["features"], info["failed"], info["config_enabled"],
                info["config_change_pending"]))


class VVirtio(gdb.Command):
    """virtio devices and virtqueues.

Usage:
  vvirtio            every device on the virtio bus (name, device id,
                     driver, features, failed/config flags) and each of its
                     virtqueues: num, num_free, free_head, last_used_idx,
                     indirect, event, broken, ring addresses; split rings:
                     avail and used index; packed rings: used and avail wrap
                     counters, next_avail_idx, event flags, the driver and
                     device event structures, whether a used buffer waits
  vvirtio -q VQ      one struct virtqueue * decoded as its vring_virtqueue

The device status byte lives in the device's registers, not in memory, so
it cannot be shown from a dump; 'failed' records a failed probe.
struct vring_virtqueue comes from virtio_ring.ko's debug info."""

    def __init__(self):
        super().__init__("vvirtio", gdb.COMMAND_DATA, gdb.COMPLETE_EXPRESSION)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        if argv and argv[0] == "-q":
            if len(argv) < 2:
                raise gdb.GdbError("usage: vvirtio -q VQ")
            addr = percpu.parse_address(arg.strip()[2:].strip())
            info = decode_vq(addr)
            vdev = gdb.Value(addr).cast(percpu.lookup_struct("virtqueue").pointer())["vdev"]
            if int(vdev):
                gdb.write(device_line(device_info(vdev)) + "\n")
            gdb.write("\n".join(vq_lines(info, "")) + "\n")
            return
        if argv:
            raise gdb.GdbError("usage: vvirtio [-q VQ]")
        devices = virtio_devices()
        if not devices:
            gdb.write("no devices on the virtio bus\n")
        for vdev in devices:
            gdb.write(device_line(device_info(vdev)) + "\n")
            for vq in virtqueues(vdev):
                gdb.write("\n".join(vq_lines(decode_vq(int(vq)))) + "\n")


VVirtio()
