"""SLUB analysis: cache list, freelist checks, address lookup.

Model (Linux 6.1, mm/slub.c and mm/slab.h):
- every cache is a struct kmem_cache on the slab_caches list;
- struct slab overlays the struct page of the slab's head page; slab memory
  is page_address(head page); objects sit at red_left_pad + i * size;
- free objects form singly linked freelists.  The link of object p is the
  word at p + s->offset, stored (with SLAB_FREELIST_HARDENED) as
  next ^ s->random ^ swab64(p + s->offset);
- free objects live on: the CPU freelist (kmem_cache_cpu.freelist, objects of
  kmem_cache_cpu.slab), the CPU slab's own freelist (frees from other CPUs),
  the per-CPU partial slabs (kmem_cache_cpu.partial chained by slab.next),
  and each node's partial list (kmem_cache_node.partial via slab.slab_list).

Speed: through vmcore-gdbserver, vkmem -s and -S print the stub's `monitor
kmem` answer (memmodel/slab.c: the same model and text, computed next to the
dump).  Elsewhere (other gdb targets, or `set vmcore-kmem-stub off`) this
module does the work: every struct is read whole in one target read, and a
freelist is followed one link per read unless the links read so far would
cost more than reading the slab's memory in one request (see SlabMemory).

Commands: vkmem -s [NAME], vkmem -S NAME|ADDR, vkmem ADDR (ADDR may also be
a struct page in vmemmap)
Functions: $slab_cache(ADDR) (the struct kmem_cache * holding ADDR, or 0)
Parameters: vmcore-kmem-stub on|off
"""


import gdb

from . import percpu, target
from .percpu import cached, layout, read_bytes, read_u64, u32_at, u64_at

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT


def swab64(value):
    return int.from_bytes(value.to_bytes(8, "little"), "big")


# ---------------------------------------------------------------------------
# Layouts and memory-model constants.

def _kmem_cache_layout():
    return cached("slab:kmem_cache_layout", _make_kmem_cache_layout)


def _make_kmem_cache_layout():
    members = {"cpu_slab": "cpu_slab", "flags": "flags", "size": "size",
               "object_size": "object_size", "offset": "offset", "oo": "oo",
               "name": "name", "list": "list", "node": "node"}
    for optional in ("random", "red_left_pad"):
        if percpu.Layout.has_member("kmem_cache", optional):
            members[optional] = optional
    return layout("kmem_cache", members)


def _cpu_layout():
    return cached("slab:cpu_layout", _make_cpu_layout)


def _make_cpu_layout():
    members = {"freelist": "freelist", "slab": "slab"}
    if percpu.Layout.has_member("kmem_cache_cpu", "partial"):
        members["partial"] = "partial"
    return layout("kmem_cache_cpu", members)


def _node_layout():
    return cached("slab:node_layout", _make_node_layout)


def _make_node_layout():
    members = {"nr_partial": "nr_partial", "partial": "partial"}
    for optional in ("nr_slabs", "total_objects", "full"):
        if percpu.Layout.has_member("kmem_cache_node", optional):
            members[optional] = optional
    return layout("kmem_cache_node", members)


def _slab_layout():
    return layout("slab", {"flags": "__page_flags", "slab_list": "slab_list",
                           "next": "next", "slab_cache": "slab_cache",
                           "freelist": "freelist", "counters": "counters"})


def _page_layout():
    return layout("page", {"flags": "flags", "compound_head": "compound_head"})


def _kernel_u64(name):
    return cached(name, lambda: read_u64(percpu.symbol_address(name)))


def page_offset_base():
    return _kernel_u64("page_offset_base")


def vmemmap_base():
    return _kernel_u64("vmemmap_base")


def max_pfn():
    return _kernel_u64("max_pfn")


def nr_node_ids():
    def compute():
        try:
            return int(gdb.parse_and_eval("nr_node_ids"))
        except gdb.error:
            return 1
    return cached("nr_node_ids", compute)


def pg_slab_mask():
    return cached("PG_slab", lambda: 1 << int(gdb.parse_and_eval("(int)PG_slab")))


def page_size_bytes():
    return _page_layout().size


def virt_to_page(addr):
    """struct page address for a direct-map address, or None."""
    base = page_offset_base()
    if addr < base:
        return None
    pfn = (addr - base) >> PAGE_SHIFT
    if pfn >= max_pfn():
        return None
    return vmemmap_base() + pfn * page_size_bytes()


def page_to_virt(page):
    return page_offset_base() + (((page - vmemmap_base()) // page_size_bytes()) << PAGE_SHIFT)


# ---------------------------------------------------------------------------
# Objects read from the target.

class Slab:
    """One struct slab (read whole)."""

    def __init__(self, addr):
        lay = _slab_layout()
        buf = read_bytes(addr, lay.size)
        self.addr = addr
        self.flags = u64_at(buf, lay.flags)
        self.cache = u64_at(buf, lay.slab_cache)
        self.freelist = u64_at(buf, lay.freelist)
        counters = u64_at(buf, lay.counters)
        self.inuse = counters & 0xffff
        self.objects = (counters >> 16) & 0x7fff
        self.frozen = (counters >> 31) & 1
        self.next = u64_at(buf, lay.next)
        self.list_next = u64_at(buf, lay.slab_list)
        self.base = page_to_virt(addr)


class Cache:
    """One struct kmem_cache (the part before node[], plus the node pointers)."""

    def __init__(self, addr):
        lay = _kmem_cache_layout()
        nodes = nr_node_ids()
        buf = read_bytes(addr, lay.node + 8 * nodes)
        self.addr = addr
        self.cpu_slab = u64_at(buf, lay.cpu_slab)
        self.flags = u32_at(buf, lay.flags)
        self.size = u32_at(buf, lay.size)
        self.object_size = u32_at(buf, lay.object_size)
        self.offset = u32_at(buf, lay.offset)
        oo = u32_at(buf, lay.oo)
        self.order = oo >> 16
        self.oo_objects = oo & 0xffff
        self.random = u64_at(buf, lay.random) if hasattr(lay, "random") else 0
        self.red_left_pad = u32_at(buf, lay.red_left_pad) if hasattr(lay, "red_left_pad") else 0
        self.name_ptr = u64_at(buf, lay.name)
        self.list_next = u64_at(buf, lay.list)
        self.nodes = [u64_at(buf, lay.node + 8 * i) for i in range(nodes)]
        self._name = None

    @property
    def name(self):
        if self._name is None:
            self._name = percpu.read_cstring(self.name_ptr, 64)
        return self._name

    def slab_bytes(self):
        return PAGE_SIZE << self.order

    def decode(self, stored, slot):
        """Freelist link stored at address slot (= object + s->offset)."""
        return stored ^ self.random ^ swab64(slot)

    def cpu(self, cpu, prefetched=None):
        """(freelist, slab, partial) of this cache on cpu; prefetched maps
        kmem_cache_cpu addresses to their bytes (see cpu_structs)."""
        lay = _cpu_layout()
        addr = percpu.per_cpu_address(self.cpu_slab, cpu)
        buf = prefetched[addr] if prefetched and addr in prefetched else read_bytes(addr, lay.size)
        partial = u64_at(buf, lay.partial) if hasattr(lay, "partial") else 0
        return u64_at(buf, lay.freelist), u64_at(buf, lay.slab), partial

    def node(self, index):
        """dict of one kmem_cache_node, or None when the node is absent."""
        ptr = self.nodes[index]
        if not ptr:
            return None
        lay = _node_layout()
        buf = read_bytes(ptr, lay.size)
        node = {"addr": ptr, "nr_partial": u64_at(buf, lay.nr_partial),
                "partial_head": ptr + lay.partial,
                "partial_first": u64_at(buf, lay.partial)}
        if hasattr(lay, "nr_slabs"):
            node["nr_slabs"] = u64_at(buf, lay.nr_slabs)
            node["total_objects"] = u64_at(buf, lay.total_objects)
        if hasattr(lay, "full"):
            node["full_head"] = ptr + lay.full
            node["full_first"] = u64_at(buf, lay.full)
        return node


def all_caches():
    """Every kmem_cache on slab_caches, in list order."""
    lay = _kmem_cache_layout()
    head = percpu.symbol_address("slab_caches")
    caches = []
    seen = set()
    entry = read_u64(head)
    while entry != head:
        addr = entry - lay.list
        if addr in seen:
            raise gdb.GdbError("slab_caches list loops at kmem_cache 0x%x" % addr)
        seen.add(addr)
        cache = Cache(addr)
        caches.append(cache)
        entry = cache.list_next
    return caches


def find_cache(spec):
    """A Cache by name or by kmem_cache address/expression."""
    caches = all_caches()
    for cache in caches:
        if cache.name == spec:
            return cache
    try:
        addr = percpu.parse_address(spec)
    except gdb.GdbError:
        raise gdb.GdbError("no slab cache named '%s'" % spec)
    for cache in caches:
        if cache.addr == addr:
            return cache
    raise gdb.GdbError("'%s' is neither a cache name nor a kmem_cache on slab_caches" % spec)


def cpu_structs(caches):
    """Every kmem_cache_cpu of the given caches on every possible CPU, read
    in a few bulk reads (they sit close together in the per-CPU areas)."""
    size = _cpu_layout().size
    addresses = [percpu.per_cpu_address(cache.cpu_slab, cpu)
                 for cache in caches for cpu in percpu.possible_cpus()]
    return percpu.read_many(addresses, size)


def node_partial_slabs(node, limit):
    """Slab objects on a node's partial list, following slab_list.next from
    each struct slab read (one read per slab); stops at a loop or limit."""
    link = _slab_layout().slab_list
    head = node["partial_head"]
    entry = node["partial_first"]
    seen = set()
    slabs = []
    while entry != head and entry:
        if entry in seen or len(slabs) > limit:
            return slabs, "list at 0x%x loops or exceeds %d entries" % (head, limit)
        seen.add(entry)
        slab = Slab(entry - link)
        slabs.append(slab)
        entry = slab.list_next
    return slabs, None


def list_slabs(head_addr, first, link_offset, limit):
    """struct slab addresses on a list_head list linked through slab_list."""
    slabs = []
    entry = first
    seen = set()
    while entry != head_addr and entry:
        if entry in seen or len(slabs) > limit:
            return slabs, "list at 0x%x loops or exceeds %d entries" % (head_addr, limit)
        seen.add(entry)
        slab_addr = entry - link_offset
        slabs.append(slab_addr)
        entry = read_u64(entry)
    return slabs, None


# ---------------------------------------------------------------------------
# Freelists.

class FreelistWalk:
    """Objects on one freelist of one slab, with the first problem found:
    (kind, detail, where, message) with kind "outside" (detail: the bad
    pointer), "link-outside" (detail: a link slot past the slab's end) or
    "duplicate" (detail: the objects on the loop)."""

    def __init__(self, label, objects, problem):
        self.label = label
        self.objects = objects
        self.problem = problem


def _bad_pointer(cache, slab, pointer, end):
    """Why pointer cannot be a free object of slab (memory up to end), or None."""
    if pointer < slab.base or pointer >= end:
        return "outside the slab"
    offset = pointer - slab.base - cache.red_left_pad
    if offset < 0 or offset % cache.size:
        return "not on an object boundary"
    return None


def slab_extent(cache, slab):
    """Bytes of the slab holding objects, at most one slab of the cache's
    order (a corrupt object count must not run into other memory)."""
    objects = slab.objects or cache.oo_objects
    return max(min(cache.red_left_pad + objects * cache.size, cache.slab_bytes()), 8)


# Measured costs of a read through gdb's remote protocol: a small read costs
# about 7 us, and gdb decodes a bulk reply at about 0.25 us per byte.
SMALL_READ_US = 7.0
BULK_READ_US_PER_BYTE = 0.25


class SlabMemory:
    """The memory of one slab, read lazily: links one small read each until
    those reads would have cost more than one read of the whole slab, then
    the whole slab once.  A 4 KiB slab's links are followed one by one up to
    about 150 links, a 32 KiB slab's up to about 1200."""

    def __init__(self, cache, slab):
        self.base = slab.base
        self.size = slab_extent(cache, slab)
        self.end = self.base + self.size
        self.budget = 1 + int(BULK_READ_US_PER_BYTE * self.size / SMALL_READ_US)
        self.buffer = None

    def u64(self, addr):
        if self.buffer is None and self.budget > 0:
            self.budget -= 1
            return u64_at(read_bytes(addr, 8))
        if self.buffer is None:
            self.buffer = read_bytes(self.base, self.size)
        return u64_at(self.buffer, addr - self.base)


def walk_freelist(cache, slab, head, memory, label):
    """Follows a freelist starting at head through memory (a SlabMemory of
    the slab).  Stops at NULL, at a pointer outside the slab or not on an
    object boundary, or when an object repeats (a loop)."""
    end = memory.end
    objects = []
    seen = {}
    pointer = head
    while pointer:
        bad = _bad_pointer(cache, slab, pointer, end)
        if bad:
            where = objects[-1] if objects else None
            return FreelistWalk(label, objects, (
                "outside", pointer, where,
                "pointer 0x%x %s (slab memory 0x%x-0x%x)%s" % (
                    pointer, bad, slab.base, end,
                    (" read from free object 0x%x" % where) if where else " at the head")))
        if pointer in seen:
            cycle = objects[seen[pointer]:]
            return FreelistWalk(label, objects, (
                "duplicate", cycle, seen[pointer],
                "duplicate freelist object 0x%x (position %d repeats position %d): the list "
                "loops through %d object(s): %s" % (
                    pointer, len(objects), seen[pointer], len(cycle),
                    " -> ".join("0x%x" % obj for obj in cycle + [pointer]))))
        seen[pointer] = len(objects)
        objects.append(pointer)
        slot = pointer + cache.offset
        if slot + 8 > end:
            return FreelistWalk(label, objects, (
                "link-outside", slot, pointer,
                "free pointer slot 0x%x of object 0x%x lies beyond the slab" % (slot, pointer)))
        pointer = cache.decode(memory.u64(slot), slot)
    return FreelistWalk(label, objects, None)


def count_freelist(cache, slab, head):
    """Entries of a CPU freelist, counted as crash's count_free_objects does:
    up to a repeated object; a bad pointer is one more entry unless its bit 0
    is set."""
    walk = walk_freelist(cache, slab, head, SlabMemory(cache, slab), "")
    bad_head = walk.problem and walk.problem[0] == "outside" and not walk.problem[1] & 1
    return len(walk.objects) + (1 if bad_head else 0)


class SlabCheck:
    """Result of walking every freelist of one slab."""

    def __init__(self, where, slab, walks):
        self.where = where
        self.slab = slab
        self.walks = walks


def check_slab(cache, slab_addr, where, cpu_freelist=None):
    slab = Slab(slab_addr)
    memory = SlabMemory(cache, slab)
    walks = []
    if cpu_freelist is not None:
        walks.append(walk_freelist(cache, slab, cpu_freelist, memory, where + " CPU freelist"))
    walks.append(walk_freelist(cache, slab, slab.freelist, memory, where + " slab freelist"))
    return SlabCheck(where, slab, walks)


def cache_slab_sources(cache):
    """(where, slab address, cpu freelist or None) for every slab reachable
    from the per-CPU structures and the node partial (and full) lists."""
    sources = []
    problems = []
    link = _slab_layout().slab_list
    for cpu in percpu.possible_cpus():
        freelist, slab, partial = cache.cpu(cpu)
        if slab:
            sources.append(("CPU %d slab" % cpu, slab, freelist))
        elif freelist:
            problems.append("CPU %d: freelist 0x%x without a CPU slab" % (cpu, freelist))
        seen = set()
        while partial:
            if partial in seen or len(seen) > 100000:
                problems.append("CPU %d partial chain loops at slab 0x%x" % (cpu, partial))
                break
            seen.add(partial)
            sources.append(("CPU %d partial" % cpu, partial, None))
            partial = Slab(partial).next
    for index in range(len(cache.nodes)):
        node = cache.node(index)
        if node is None:
            continue
        slabs, err = node_partial_slabs(node, node["nr_partial"] + 1000)
        if err:
            problems.append("node %d partial: %s" % (index, err))
        if len(slabs) != node["nr_partial"]:
            problems.append("node %d: nr_partial is %d but the partial list has %d slabs"
                            % (index, node["nr_partial"], len(slabs)))
        sources.extend(("node %d partial" % index, s.addr, None) for s in slabs)
        if "full_head" in node:
            slabs, err = list_slabs(node["full_head"], node["full_first"], link, 1000000)
            if err:
                problems.append("node %d full: %s" % (index, err))
            sources.extend(("node %d full" % index, s, None) for s in slabs)
    return sources, problems


def check_cache(cache):
    """Walks every reachable freelist of a cache.  Returns (checks, problems)
    where problems are strings, each duplicate object named once."""
    sources, problems = cache_slab_sources(cache)
    checks = []
    owner = {}
    duplicates = []
    for where, slab_addr, cpu_freelist in sources:
        check = check_slab(cache, slab_addr, where, cpu_freelist)
        checks.append(check)
        slab = check.slab
        if slab.cache != cache.addr:
            problems.append("%s: slab 0x%x belongs to kmem_cache 0x%x, not 0x%x"
                            % (where, slab_addr, slab.cache, cache.addr))
        for walk in check.walks:
            for obj in walk.objects:
                if obj in owner:
                    duplicates.append(obj)
                    problems.append("duplicate freelist object 0x%x: on %s and %s"
                                    % (obj, owner[obj], walk.label))
                else:
                    owner[obj] = walk.label
            if walk.problem:
                if walk.problem[0] == "duplicate":
                    # Every object on the cycle is on the list more than once.
                    duplicates.extend(walk.problem[1])
                problems.append("%s (slab 0x%x): %s" % (walk.label, slab_addr, walk.problem[3]))
        slab_free = len(check.walks[-1].objects)
        if cpu_freelist is None and not check.walks[-1].problem \
                and slab.objects - slab.inuse != slab_free:
            problems.append("%s slab 0x%x: objects %d - inuse %d = %d but its freelist has %d"
                            % (where, slab_addr, slab.objects, slab.inuse,
                               slab.objects - slab.inuse, slab_free))
    return checks, problems, sorted(set(duplicates))


# ---------------------------------------------------------------------------
# Cache statistics (kmem -s).

def cache_stats(cache, prefetched=None):
    """(allocated, total, slabs): totals from the node counters, free objects
    counted as crash does: objects - inuse of every node and CPU partial
    slab and of each CPU slab, plus the length of each CPU freelist
    (count_freelist).  prefetched: kmem_cache_cpu bytes from cpu_structs."""
    total = 0
    slabs = 0
    free = 0
    for index in range(len(cache.nodes)):
        node = cache.node(index)
        if node is None:
            continue
        total += node.get("total_objects", 0)
        slabs += node.get("nr_slabs", 0)
        partial, _ = node_partial_slabs(node, node["nr_partial"] + 1000)
        free += sum(slab.objects - slab.inuse for slab in partial)
    for cpu in percpu.possible_cpus():
        freelist, slab_addr, partial = cache.cpu(cpu, prefetched)
        if slab_addr:
            slab = Slab(slab_addr)
            free += slab.objects - slab.inuse
            if freelist:
                free += count_freelist(cache, slab, freelist)
        seen = set()
        while partial and partial not in seen:
            seen.add(partial)
            slab = Slab(partial)
            free += slab.objects - slab.inuse
            partial = slab.next
    return total - free, total, slabs


def format_size(nbytes):
    if nbytes % (1 << 20) == 0:
        return "%dm" % (nbytes >> 20)
    return "%dk" % (nbytes >> 10)


def cache_list_lines(name=None):
    lines = ["%-18s %7s %10s %9s %6s %6s  %s" % ("CACHE", "OBJSIZE", "ALLOCATED",
                                                  "TOTAL", "SLABS", "SSIZE", "NAME")]
    caches = [cache for cache in all_caches() if not name or cache.name == name]
    prefetched = cpu_structs(caches)
    for cache in caches:
        allocated, total, slabs = cache_stats(cache, prefetched)
        lines.append("%-18x %7d %10d %9d %6d %6s  %s" % (
            cache.addr, cache.object_size, allocated, total, slabs,
            format_size(cache.slab_bytes()), cache.name))
    return lines


# ---------------------------------------------------------------------------
# Address lookup (kmem ADDR).

def head_page(page):
    """(head page, is_tail) following page->compound_head bit 0."""
    lay = _page_layout()
    compound = read_u64(page + lay.compound_head)
    if compound & 1:
        return compound - 1, True
    return page, False


def page_flags(page):
    return read_u64(page + _page_layout().flags)


def struct_page_at(addr):
    """The struct page holding addr when addr lies in vmemmap (below max_pfn's
    page), else None."""
    base = vmemmap_base()
    size = page_size_bytes()
    if not base <= addr < base + max_pfn() * size:
        return None
    return addr - (addr - base) % size


def find_page(addr, page):
    """What the struct page at page (holding addr) is in slab terms: kind
    'page-not-slab' or 'page-slab' (with cache and slab, and the objects that
    overlap this page's memory)."""
    head, tail = head_page(page)
    flags = page_flags(head)
    memory = page_to_virt(page)
    result = {"addr": addr, "page": page, "head": head, "tail": tail, "flags": flags,
              "pfn": (page - vmemmap_base()) // page_size_bytes(), "memory": memory,
              "kind": "page-not-slab"}
    if not flags & pg_slab_mask():
        return result
    slab = Slab(head)
    cache = Cache(slab.cache)
    result.update({"kind": "page-slab", "cache": cache, "slab": slab, "tail_index":
                   (page - head) // page_size_bytes()})
    start = slab.base + cache.red_left_pad
    first = max(0, (memory - start) // cache.size) if cache.size else 0
    last = min(slab.objects, (memory + PAGE_SIZE - start + cache.size - 1) // cache.size) - 1 \
        if cache.size else -1
    result["objects"] = (first, last) if last >= first else None
    return result


def find_object(addr):
    """What addr is in slab terms: a dict with 'kind' in
    {'not-direct-map', 'not-slab', 'slab', 'page-not-slab', 'page-slab'};
    for 'slab': cache, slab, object, index, offset, state ('allocated'/'free'),
    free_list (label or None), page and head page.  An address in vmemmap is
    taken as a struct page (find_page)."""
    page = struct_page_at(addr)
    if page is not None:
        return find_page(addr, page)
    page = virt_to_page(addr)
    if page is None:
        return {"kind": "not-direct-map", "addr": addr}
    head, tail = head_page(page)
    flags = page_flags(head)
    result = {"addr": addr, "page": page, "head": head, "tail": tail, "flags": flags}
    if not flags & pg_slab_mask():
        result["kind"] = "not-slab"
        return result
    slab = Slab(head)
    cache = Cache(slab.cache)
    start = slab.base + cache.red_left_pad
    index = (addr - start) // cache.size if addr >= start else -1
    result.update({"kind": "slab", "cache": cache, "slab": slab})
    if index < 0 or index >= slab.objects:
        result.update({"object": None, "index": None, "state": "outside any object"})
        return result
    obj = start + index * cache.size
    memory = SlabMemory(cache, slab)
    lists = [walk_freelist(cache, slab, slab.freelist, memory, "slab freelist")]
    for cpu in percpu.possible_cpus():
        freelist, cpu_slab, _ = cache.cpu(cpu)
        if cpu_slab == head:
            lists.append(walk_freelist(cache, slab, freelist, memory, "CPU %d freelist" % cpu))
    on = [walk.label for walk in lists if obj in walk.objects]
    result.update({"object": obj, "index": index, "offset": addr - obj,
                   "state": "free" if on else "allocated",
                   "free_list": ", ".join(on) if on else None})
    return result


def describe(found):
    """Human-readable lines for a find_object() result."""
    addr = found["addr"]
    if found["kind"] == "not-direct-map":
        return ["0x%x is not in the kernel direct map (page_offset_base 0x%x, max_pfn 0x%x): "
                "not slab memory" % (addr, page_offset_base(), max_pfn())]
    if found["kind"].startswith("page-"):
        return describe_page(found)
    page_line = "page 0x%x" % found["page"]
    if found["tail"]:
        page_line += " (tail page of compound head 0x%x)" % found["head"]
    if found["kind"] == "not-slab":
        return ["0x%x: %s, flags 0x%x: not a slab page" % (addr, page_line, found["flags"])]
    cache, slab = found["cache"], found["slab"]
    lines = ["0x%x: %s" % (addr, page_line),
             "  cache  %s (kmem_cache 0x%x) objsize %d size %d"
             % (cache.name, cache.addr, cache.object_size, cache.size),
             "  slab   0x%x memory 0x%x-0x%x objects %d inuse %d%s"
             % (slab.addr, slab.base, slab.base + cache.slab_bytes(), slab.objects,
                slab.inuse, " frozen" if slab.frozen else "")]
    if found["object"] is None:
        lines.append("  not inside any object of the slab")
        return lines
    state = found["state"].upper()
    if found["free_list"]:
        state += " (on %s)" % found["free_list"]
    lines.append("  object 0x%x index %d, +%d: %s"
                 % (found["object"], found["index"], found["offset"], state))
    return lines


def describe_page(found):
    """Lines for a struct page address (find_page)."""
    page = found["page"]
    line = "0x%x: struct page 0x%x of pfn 0x%x (memory 0x%x-0x%x)" % (
        found["addr"], page, found["pfn"], found["memory"], found["memory"] + PAGE_SIZE)
    if found["tail"]:
        index = (page - found["head"]) // page_size_bytes()
        line += ", tail page %d of compound head 0x%x" % (index, found["head"])
    if found["kind"] == "page-not-slab":
        return [line, "  flags 0x%x: not a slab page" % found["flags"]]
    cache, slab = found["cache"], found["slab"]
    lines = [line,
             "  cache  %s (kmem_cache 0x%x) objsize %d size %d"
             % (cache.name, cache.addr, cache.object_size, cache.size),
             "  slab   0x%x memory 0x%x-0x%x objects %d inuse %d%s"
             % (slab.addr, slab.base, slab.base + cache.slab_bytes(), slab.objects,
                slab.inuse, " frozen" if slab.frozen else "")]
    if found["objects"]:
        first, last = found["objects"]
        start = slab.base + cache.red_left_pad
        lines.append("  objects %d-%d of the slab (0x%x-0x%x) overlap this page"
                     % (first, last, start + first * cache.size, start + (last + 1) * cache.size))
    else:
        lines.append("  no object of the slab overlaps this page")
    return lines


# ---------------------------------------------------------------------------
# The stub's answer (monitor kmem).

class KmemStubParameter(gdb.Parameter):
    """Whether vkmem -s and -S ask vmcore-gdbserver (`monitor kmem`) for
their answer.  Off: these helpers read the dump through gdb themselves, as
they do on any other target (used to compare the two)."""

    set_doc = "Set whether vkmem -s/-S use vmcore-gdbserver's monitor kmem."
    show_doc = "Show whether vkmem -s/-S use vmcore-gdbserver's monitor kmem."

    def __init__(self):
        super().__init__("vmcore-kmem-stub", gdb.COMMAND_DATA, gdb.PARAM_BOOLEAN)
        self.value = True

    def get_set_string(self):
        return ""

    def get_show_string(self, svalue):
        return "vkmem -s/-S use vmcore-gdbserver's monitor kmem: %s" % svalue


KMEM_STUB = KmemStubParameter()


def stub_kmem(args):
    """Text of `monitor kmem ARGS`, or None when the target is not a
    vmcore-gdbserver that knows the command (or vmcore-kmem-stub is off).
    A refusal from the stub becomes a gdb.GdbError with its reason."""
    if not KMEM_STUB.value or not target.is_vmcore_stub():
        return None
    command = "kmem " + args
    try:
        return gdb.execute("monitor " + command, to_string=True)
    except gdb.error:
        why = (target.monitor("last-error") or "").strip()
    if "unknown monitor command" in why:
        return None
    prefix = "monitor %s: " % command
    raise gdb.GdbError(why[len(prefix):] if why.startswith(prefix) else
                       why or "monitor %s failed" % command)


def stub_check(spec):
    """monitor kmem -S for a cache name, a number, or else any gdb expression
    giving a kmem_cache address."""
    try:
        return stub_kmem("-S " + spec)
    except gdb.GdbError as err:
        if not str(err).startswith("no slab cache named"):
            raise
        try:
            addr = percpu.parse_address(spec)
        except gdb.GdbError:
            raise err
        return stub_kmem("-S 0x%x" % addr)


# ---------------------------------------------------------------------------
# gdb commands and functions.

class VKmem(gdb.Command):
    """SLUB slab caches, like crash's kmem -s / -S / ADDR.

Usage:
  vkmem -s [NAME]        list caches: OBJSIZE ALLOCATED TOTAL SLABS SSIZE NAME
  vkmem -S NAME|ADDR     check every freelist of one cache (CPU freelist and
                         CPU slab, CPU partial slabs, node partial lists) and
                         report duplicate objects, pointers outside the slab
                         and loops
  vkmem ADDR             which cache, slab and object ADDR belongs to, and
                         whether that object is allocated or free; for a
                         struct page address (in vmemmap, head or tail page
                         of a compound slab page): its cache and slab

Through vmcore-gdbserver, -s and -S print the stub's `monitor kmem` answer
(the same text, computed next to the dump); `set vmcore-kmem-stub off` makes
them read the dump through gdb instead, as on any other target.

Freelist links are decoded for SLAB_FREELIST_HARDENED:
  next = stored ^ s->random ^ swab64(address of the link)."""

    def __init__(self):
        super().__init__("vkmem", gdb.COMMAND_DATA, gdb.COMPLETE_EXPRESSION)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        if not argv:
            raise gdb.GdbError("usage: vkmem -s [NAME] | -S NAME|ADDR | ADDR")
        if argv[0] == "-s":
            name = argv[1] if len(argv) > 1 else None
            text = stub_kmem("-s" + (" " + name if name else ""))
            if text is not None:
                gdb.write(text)
                return
            lines = cache_list_lines(name)
            if name and len(lines) == 1:
                raise gdb.GdbError("no slab cache named '%s'" % name)
            gdb.write("\n".join(lines) + "\n")
        elif argv[0] == "-S":
            if len(argv) != 2:
                raise gdb.GdbError("usage: vkmem -S NAME|ADDR")
            text = stub_check(argv[1])
            if text is not None:
                gdb.write(text)
                return
            self.check(find_cache(argv[1]))
        else:
            for line in describe(find_object(percpu.parse_address(arg))):
                gdb.write(line + "\n")

    @staticmethod
    def check(cache):
        gdb.write("kmem_cache 0x%x %s: objsize %d size %d offset %d order %d objects/slab %d "
                  "random 0x%x\n" % (cache.addr, cache.name, cache.object_size, cache.size,
                                     cache.offset, cache.order, cache.oo_objects, cache.random))
        checks, problems, duplicates = check_cache(cache)
        free = 0
        for check in checks:
            slab = check.slab
            counts = ", ".join("%s %d" % (w.label[len(check.where) + 1:], len(w.objects))
                               for w in check.walks)
            gdb.write("  %-16s slab 0x%x memory 0x%x objects %3d inuse %3d: %s\n"
                      % (check.where, slab.addr, slab.base, slab.objects, slab.inuse, counts))
            free += sum(len(w.objects) for w in check.walks)
        gdb.write("%d slabs checked, %d free objects on freelists\n" % (len(checks), free))
        if problems:
            gdb.write("%d problem(s):\n" % len(problems))
            for problem in problems:
                gdb.write("  " + problem + "\n")
        else:
            gdb.write("no freelist problems found\n")
        if duplicates:
            gdb.write("duplicate freelist objects: %s\n"
                      % " ".join("0x%x" % obj for obj in duplicates))


class SlabCacheFunction(gdb.Function):
    """$slab_cache(ADDR): the struct kmem_cache * whose slab holds ADDR, or 0."""

    def __init__(self):
        super().__init__("slab_cache")

    def invoke(self, addr):
        found = find_object(int(addr.cast(gdb.lookup_type("unsigned long"))))
        pointer = percpu.lookup_struct("kmem_cache").pointer()
        value = found["cache"].addr if found["kind"] in ("slab", "page-slab") else 0
        return gdb.Value(value).cast(pointer)


VKmem()
SlabCacheFunction()
