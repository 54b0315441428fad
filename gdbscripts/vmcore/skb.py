"""Socket buffers and sockets.

sk_buff (Linux 6.1, NET_SKBUFF_DATA_USES_OFFSET on 64-bit): tail and end
are offsets from head, and the struct skb_shared_info sits at head + end.
Each fragment is a bio_vec (bv_page, bv_len, bv_offset); a fragment's bytes
are at page_address(bv_page) + bv_offset, which the slab helper resolves to
a cache and object when the page is slab memory (e.g. a kmalloc buffer
attached as a fragment).

Sockets of a task: task->files->fdt->fd[i] is a struct file; it is a socket
when f_op == &socket_file_ops, and then private_data is the struct socket
whose ->sk is the struct sock.  Addresses and ports come from
sk->__sk_common (skc_rcv_saddr/skc_daddr, skc_num in host order, skc_dport
in network order; skc_v6_* for IPv6).

Commands: vskb SKB            decode one sk_buff, its shared info and frags
          vnet -s [PID|TASK]  sockets of a task (default: the current task)
          vnet -q SOCK        skbs on a struct sock's receive queue
"""

import socket
import struct

import gdb

from . import percpu, slab, target

AF_NAMES = {1: "UNIX", 2: "INET", 10: "INET6", 16: "NETLINK", 17: "PACKET"}
SOCK_TYPES = {1: "STREAM", 2: "DGRAM", 3: "RAW", 4: "RDM", 5: "SEQPACKET", 6: "DCCP",
              10: "PACKET"}


def _ptr(type_name, addr):
    return gdb.Value(addr).cast(gdb.lookup_type(type_name).pointer())


def _struct_ptr(name, addr):
    return gdb.Value(addr).cast(percpu.lookup_struct(name).pointer())


def describe_slab_location(addr, length=0):
    """Short text saying which slab object addr lies in (or that it is not
    slab), and whether length bytes from addr run past that object."""
    found = slab.find_object(addr)
    if found["kind"] == "not-direct-map":
        return "not in the direct map"
    if found["kind"] == "not-slab":
        return "page 0x%x is not a slab page" % found["head"]
    cache = found["cache"]
    if found["object"] is None:
        return "in a %s slab (0x%x) but outside its objects" % (cache.name, found["slab"].addr)
    text = "in %s object 0x%x (+%d, %s)" % (cache.name, found["object"], found["offset"],
                                           found["state"])
    overrun = found["offset"] + length - cache.object_size
    if overrun > 0:
        text += "; its %d bytes run %d past the object's end (object size %d)" % (
            length, overrun, cache.object_size)
    return text


def _preview(addr, size, limit=32):
    """First bytes of a buffer, or b'' when they cannot be read."""
    try:
        return percpu.read_bytes(addr, min(size, limit))
    except gdb.GdbError:
        return b""


def decode_skb(addr):
    """dict with the sk_buff's main fields, its shared info and its frags."""
    skb = _struct_ptr("sk_buff", addr).dereference()
    try:
        head = int(skb["head"])
        data = int(skb["data"])
        tail = int(skb["tail"])
        end = int(skb["end"])
        info = {
            "addr": addr, "head": head, "data": data, "tail": tail, "end": end,
            "len": int(skb["len"]), "data_len": int(skb["data_len"]),
            "truesize": int(skb["truesize"]),
            "users": int(skb["users"]["refs"]["counter"]),
            "sk": int(skb["sk"]), "dev": int(skb["dev"]),
            "protocol": socket.ntohs(int(skb["protocol"]) & 0xffff),
        }
    except gdb.MemoryError as err:
        raise gdb.GdbError("cannot read struct sk_buff at 0x%x: %s" % (addr, err))
    pointer_offsets = skb["tail"].type.strip_typedefs().code != gdb.TYPE_CODE_PTR
    shinfo_addr = head + end if pointer_offsets else end
    info["tail_addr"] = head + tail if pointer_offsets else tail
    info["shinfo"] = shinfo_addr
    shinfo = _struct_ptr("skb_shared_info", shinfo_addr).dereference()
    try:
        nr_frags = int(shinfo["nr_frags"])
        info["nr_frags"] = nr_frags
        info["frag_list"] = int(shinfo["frag_list"])
        info["dataref"] = int(shinfo["dataref"]["counter"])
        info["gso_size"] = int(shinfo["gso_size"])
        frags = []
        max_frags = shinfo["frags"].type.range()[1] + 1
        for i in range(min(nr_frags, max_frags)):
            frag = shinfo["frags"][i]
            page = int(frag["bv_page"])
            frags.append({"page": page, "offset": int(frag["bv_offset"]),
                          "size": int(frag["bv_len"])})
        info["frags"] = frags
        info["frag_problem"] = (None if nr_frags <= max_frags else
                                "nr_frags %d exceeds MAX_SKB_FRAGS %d" % (nr_frags, max_frags))
    except gdb.MemoryError as err:
        raise gdb.GdbError("cannot read skb_shared_info at 0x%x (head 0x%x + end %d): %s"
                           % (shinfo_addr, head, end, err))
    for frag in info["frags"]:
        page = frag["page"]
        frag["head_page"], frag["tail"] = slab.head_page(page) if page else (0, False)
        frag["vaddr"] = slab.page_to_virt(page) + frag["offset"] if page else 0
        frag["slab"] = slab.find_object(frag["vaddr"]) if page else None
        frag["where"] = describe_slab_location(frag["vaddr"], frag["size"]) if page else "no page"
        frag["preview"] = _preview(frag["vaddr"], frag["size"]) if page else b""
    info["head_where"] = describe_slab_location(head) if head else "no head"
    return info


def skb_lines(info):
    lines = [
        "sk_buff 0x%x: len %d data_len %d truesize %d users %d sk 0x%x dev 0x%x protocol 0x%04x"
        % (info["addr"], info["len"], info["data_len"], info["truesize"], info["users"],
           info["sk"], info["dev"], info["protocol"]),
        "  head 0x%x data 0x%x (+%d) tail %d (0x%x) end %d"
        % (info["head"], info["data"], info["data"] - info["head"], info["tail"],
           info["tail_addr"], info["end"]),
        "  head buffer %s" % info["head_where"],
        "  skb_shared_info 0x%x: nr_frags %d frag_list 0x%x dataref %d gso_size %d"
        % (info["shinfo"], info["nr_frags"], info["frag_list"], info["dataref"],
           info["gso_size"]),
    ]
    for i, frag in enumerate(info["frags"]):
        head = ""
        if frag["tail"]:
            head = " (tail of compound page 0x%x)" % frag["head_page"]
        lines.append("  frag[%d] page 0x%x%s offset %d size %d -> 0x%x: %s"
                     % (i, frag["page"], head, frag["offset"], frag["size"], frag["vaddr"],
                        frag["where"]))
        if frag["preview"]:
            lines.append("    data %r%s" % (frag["preview"],
                                            "..." if frag["size"] > len(frag["preview"]) else ""))
    if info["frag_problem"]:
        lines.append("  " + info["frag_problem"])
    return lines


# ---------------------------------------------------------------------------
# Tasks and their sockets.

def _task_type():
    return percpu.lookup_struct("task_struct")


def current_task():
    """task_struct address of the selected thread: the stub's thread details
    give it; on a QEMU target, the current task of the selected CPU."""
    task = target.thread_task()
    if task:
        return task
    offset, _, _ = percpu.resolve_percpu("current_task")
    return percpu.read_u64(percpu.per_cpu_address(offset, percpu.selected_cpu()))


def all_tasks():
    """Every task (thread group leaders from init_task.tasks and their
    threads from signal->thread_head)."""
    task_t = _task_type()
    tasks_off = percpu.field_offset(task_t, "tasks")
    node_off = percpu.field_offset(task_t, "thread_node")
    init = percpu.symbol_address("init_task")
    out = [init]
    leader = percpu.read_u64(init + tasks_off) - tasks_off
    seen = {init}
    while leader != init and leader not in seen and len(out) < 1000000:
        seen.add(leader)
        out.append(leader)
        signal = int(_struct_ptr("task_struct", leader)["signal"])
        if signal:
            head = int(_struct_ptr("signal_struct", signal)["thread_head"].address)
            entry = percpu.read_u64(head)
            while entry != head and entry:
                thread = entry - node_off
                if thread not in seen:
                    seen.add(thread)
                    out.append(thread)
                entry = percpu.read_u64(entry)
        leader = percpu.read_u64(leader + tasks_off) - tasks_off
    return out


def find_task(spec):
    """A task_struct address from a PID or a task_struct address/expression."""
    if spec is None:
        return current_task()
    if spec.isdigit():
        pid = int(spec)
        for task in all_tasks():
            if int(_struct_ptr("task_struct", task)["pid"]) == pid:
                return task
        raise gdb.GdbError("no task with PID %d" % pid)
    return percpu.parse_address(spec)


def _ipv4(value):
    return socket.inet_ntoa(struct.pack("<I", int(value) & 0xffffffff))


def _ipv6(value):
    raw = bytes(int(value["in6_u"]["u6_addr8"][i]) & 0xff for i in range(16))
    return socket.inet_ntop(socket.AF_INET6, raw)


def sock_info(sk_addr):
    sk = _struct_ptr("sock", sk_addr).dereference()
    common = sk["__sk_common"]
    family = int(common["skc_family"])
    info = {"sk": sk_addr, "family": family,
            "type": int(sk["sk_type"]), "protocol": int(sk["sk_protocol"]),
            "state": int(common["skc_state"])}
    if family == socket.AF_INET:
        info["src"] = _ipv4(common["skc_rcv_saddr"])
        info["dst"] = _ipv4(common["skc_daddr"])
    elif family == socket.AF_INET6:
        info["src"] = _ipv6(common["skc_v6_rcv_saddr"])
        info["dst"] = _ipv6(common["skc_v6_daddr"])
    if family in (socket.AF_INET, socket.AF_INET6):
        info["sport"] = int(common["skc_num"])
        info["dport"] = socket.ntohs(int(common["skc_dport"]) & 0xffff)
    queue = sk["sk_receive_queue"]
    info["rcv_qlen"] = int(queue["qlen"])
    return info


def task_sockets(task):
    """(fd, file, struct socket, sock info) for each socket fd of a task."""
    task_v = _struct_ptr("task_struct", task).dereference()
    files = task_v["files"]
    if not int(files):
        return []
    fdt = files["fdt"]
    max_fds = int(fdt["max_fds"])
    fd_array = int(fdt["fd"])
    if max_fds > 1 << 20:
        raise gdb.GdbError("files->fdt->max_fds %d is implausible (fdt 0x%x)" % (max_fds, int(fdt)))
    raw = percpu.read_bytes(fd_array, max_fds * 8)
    socket_fops = percpu.symbol_address("socket_file_ops")
    file_t = percpu.lookup_struct("file")
    fop_off = percpu.field_offset(file_t, "f_op")
    priv_off = percpu.field_offset(file_t, "private_data")
    out = []
    for fd in range(max_fds):
        file_addr = percpu.u64_at(raw, fd * 8)
        if not file_addr:
            continue
        buf = percpu.read_bytes(file_addr, file_t.sizeof)
        if percpu.u64_at(buf, fop_off) != socket_fops:
            continue
        sock_addr = percpu.u64_at(buf, priv_off)
        sk = int(_struct_ptr("socket", sock_addr)["sk"]) if sock_addr else 0
        out.append((fd, file_addr, sock_addr, sock_info(sk) if sk else None))
    return out


def socket_lines(task):
    task_v = _struct_ptr("task_struct", task).dereference()
    comm = task_v["comm"].string(length=16).split("\0")[0]
    lines = ['PID: %d  TASK: %x  COMMAND: "%s"' % (int(task_v["pid"]), task, comm),
             "%3s %-16s %-16s %-14s %s" % ("FD", "SOCKET", "SOCK", "FAMILY:TYPE",
                                           "SOURCE-PORT DESTINATION-PORT  RCVQ")]
    for fd, _, sock_addr, info in task_sockets(task):
        if info is None:
            lines.append("%3d %-16x %-16s (no sock)" % (fd, sock_addr, "0"))
            continue
        kind = "%s:%s" % (AF_NAMES.get(info["family"], str(info["family"])),
                          SOCK_TYPES.get(info["type"], str(info["type"])))
        ends = ""
        if "sport" in info:
            ends = "%s-%d %s-%d" % (info["src"], info["sport"], info["dst"], info["dport"])
        lines.append("%3d %-16x %-16x %-14s %s  %d" % (fd, sock_addr, info["sk"], kind, ends,
                                                       info["rcv_qlen"]))
    return lines


def receive_queue(sk_addr):
    """sk_buff addresses on sk->sk_receive_queue."""
    sk = _struct_ptr("sock", sk_addr).dereference()
    queue = sk["sk_receive_queue"]
    head = int(queue.address)
    out = []
    entry = int(queue["next"])
    seen = set()
    while entry != head:
        if not entry or entry in seen or len(out) > 1000000:
            raise gdb.GdbError("receive queue of sock 0x%x is broken at 0x%x" % (sk_addr, entry))
        seen.add(entry)
        out.append(entry)
        entry = int(_struct_ptr("sk_buff", entry)["next"])
    return out, int(queue["qlen"])


class VSkb(gdb.Command):
    """Decode a struct sk_buff.

Usage: vskb SKB

Shows head, data, tail, end, len, data_len, users, sk; the skb_shared_info
at head + end with nr_frags, frag_list and dataref; and every fragment: its
page (and compound head), offset and size, and whether the fragment's memory
is slab memory: which cache and object, allocated or free.  The slab cache
of the head buffer is shown too."""

    def __init__(self):
        super().__init__("vskb", gdb.COMMAND_DATA, gdb.COMPLETE_EXPRESSION)

    def invoke(self, arg, from_tty):
        if not arg.strip():
            raise gdb.GdbError("usage: vskb SKB")
        gdb.write("\n".join(skb_lines(decode_skb(percpu.parse_address(arg)))) + "\n")


class VNet(gdb.Command):
    """Sockets of a task and the skbs queued on a socket, like crash's net -s.

Usage:
  vnet -s [PID|TASK]   sockets among a task's open files: fd, struct socket,
                       struct sock, family:type, source and destination
                       address-port, receive queue length (default: the
                       selected thread's current task)
  vnet -q SOCK         the sk_buffs on a struct sock's receive queue"""

    def __init__(self):
        super().__init__("vnet", gdb.COMMAND_DATA, gdb.COMPLETE_EXPRESSION)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        if not argv or argv[0] not in ("-s", "-q"):
            raise gdb.GdbError("usage: vnet -s [PID|TASK] | vnet -q SOCK")
        rest = arg.strip()[2:].strip()
        if argv[0] == "-s":
            gdb.write("\n".join(socket_lines(find_task(rest or None))) + "\n")
            return
        if not rest:
            raise gdb.GdbError("usage: vnet -q SOCK")
        sk_addr = percpu.parse_address(rest)
        skbs, qlen = receive_queue(sk_addr)
        gdb.write("sock 0x%x receive queue: qlen %d, %d skb(s) on the list\n"
                  % (sk_addr, qlen, len(skbs)))
        for skb_addr in skbs:
            info = decode_skb(skb_addr)
            gdb.write("  sk_buff 0x%x len %d data_len %d nr_frags %d head 0x%x\n"
                      % (skb_addr, info["len"], info["data_len"], info["nr_frags"], info["head"]))


VSkb()
VNet()
