/*
 * SLUB caches: figures for crash's `kmem -s` and the freelist check of `kmem -S`, mirroring
 * gdbscripts/vmcore/slab.py (its docstring describes the model) so that `monitor kmem` and the
 * Python path print the same text. Memory is read link by link: reads are cheap here.
 */
#include "slab.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addrmap.h"
#include "bytes.h"
#include "growarray.h"
#include "kernel_priv.h"

#define SLAB_PAGE_SHIFT 12
#define SLAB_MAX_NODES 1024
#define SLAB_MAX_CACHES 8192u
/* Longest slab list any walk follows (a corrupt counter must not make a walk run away). */
#define SLAB_MAX_LIST (1u << 22)
/* As slab.py: CPU partial chains and full lists are cut at these lengths. */
#define SLAB_CPU_PARTIAL_LIMIT 100000u
#define SLAB_FULL_LIMIT 1000000u

struct slab_model {
	struct kernel *k;
	struct {
		uint64_t cpu_slab, flags, size, object_size, offset, oo, name, list, node, random, red_left_pad;
		bool has_random, has_red_left_pad;
	} kc;
	struct {
		uint64_t freelist, slab, partial, size;
		bool has_partial;
	} cpu;
	struct {
		uint64_t nr_partial, partial, nr_slabs, total_objects, full, size;
		bool has_counters, has_full;
	} node;
	struct {
		uint64_t slab_list, next, slab_cache, freelist, counters, size;
	} sl;
	uint64_t page_struct_size, page_offset, vmemmap, slab_caches;
	int nr_nodes;
	int ncpus;                /* possible CPUs */
	uint64_t *cpu_offset;     /* __per_cpu_offset of each possible CPU */
	int *cpu_id;
};

/* --- Small helpers. ------------------------------------------------------------------------ */

/* A growable array of strings. */
struct strv {
	char **v;
	size_t n, cap;
	bool failed;
};

static void strv_addf(struct strv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void strv_addf(struct strv *s, const char *fmt, ...)
{
	if (s->failed)
		return;
	if (grow_array(&s->v, &s->cap, s->n + 1, sizeof(*s->v))) {
		s->failed = true;
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	int rc = vasprintf(&s->v[s->n], fmt, ap);
	va_end(ap);
	if (rc < 0)
		s->failed = true;
	else
		s->n++;
}

static void strv_free(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* --- Freelist decoding. -------------------------------------------------------------------- */

uint64_t slab_decode_link(uint64_t stored, uint64_t random, uint64_t slot)
{
	return stored ^ random ^ __builtin_bswap64(slot);
}

const char *slab_bad_pointer(const struct slab_geometry *g, uint64_t pointer)
{
	if (pointer < g->base || pointer >= g->end)
		return "outside the slab";
	uint64_t off = pointer - g->base;
	if (off < g->red_left_pad || (off - g->red_left_pad) % g->size)
		return "not on an object boundary";
	return NULL;
}

/* The list text of a loop: "a -> b -> a". */
static char *cycle_text(const uint64_t *objects, size_t n, uint64_t again)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return NULL;
	for (size_t i = 0; i < n; i++)
		fprintf(f, "0x%llx -> ", (unsigned long long)objects[i]);
	fprintf(f, "0x%llx", (unsigned long long)again);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static struct vm_error *walk_message(const struct slab_geometry *g, struct slab_freelist *out, const char *why)
{
	int rc = 0;
	char *cycle;
	switch (out->end) {
	case SLAB_WALK_END:
		return NULL;
	case SLAB_WALK_OUTSIDE:
		if (out->n)
			rc = asprintf(&out->message, "pointer 0x%llx %s (slab memory 0x%llx-0x%llx) read from free object 0x%llx",
				      (unsigned long long)out->pointer, why, (unsigned long long)g->base,
				      (unsigned long long)g->end, (unsigned long long)out->objects[out->n - 1]);
		else
			rc = asprintf(&out->message, "pointer 0x%llx %s (slab memory 0x%llx-0x%llx) at the head",
				      (unsigned long long)out->pointer, why, (unsigned long long)g->base,
				      (unsigned long long)g->end);
		break;
	case SLAB_WALK_LINK_OUTSIDE:
		rc = asprintf(&out->message, "free pointer slot 0x%llx of object 0x%llx lies beyond the slab",
			      (unsigned long long)out->pointer, (unsigned long long)out->objects[out->n - 1]);
		break;
	case SLAB_WALK_DUPLICATE:
		cycle = cycle_text(out->objects + out->cycle_start, out->n - out->cycle_start, out->pointer);
		if (!cycle)
			return &vm_error_nomem;
		rc = asprintf(&out->message,
			      "duplicate freelist object 0x%llx (position %zu repeats position %zu): the list loops "
			      "through %zu object(s): %s",
			      (unsigned long long)out->pointer, out->n, out->cycle_start, out->n - out->cycle_start, cycle);
		free(cycle);
		break;
	}
	if (rc < 0) {
		out->message = NULL;
		return &vm_error_nomem;
	}
	return NULL;
}

struct vm_error *slab_walk_freelist(const struct slab_geometry *g, uint64_t head, slab_read_fn read, void *arg,
				    struct slab_freelist *out)
{
	memset(out, 0, sizeof(*out));
	if (!g->size)
		return vm_error_create(VM_ERR_CORRUPT, g->base, "slab at 0x%llx: object size 0",
				       (unsigned long long)g->base);
	/* Object slots: every valid pointer has an index below this, so the walk visits each once. */
	uint64_t span = g->end > g->base + g->red_left_pad ? g->end - g->base - g->red_left_pad : 0;
	size_t slots = (size_t)((span + g->size - 1) / g->size);
	uint32_t *position = calloc(slots ? slots : 1, sizeof(*position)); /* 0 = unseen, else index + 1 */
	out->objects = malloc((slots ? slots : 1) * sizeof(*out->objects));
	if (!position || !out->objects) {
		free(position);
		free(out->objects);
		out->objects = NULL;
		return &vm_error_nomem;
	}
	struct vm_error *err = NULL;
	const char *why = NULL;
	uint64_t pointer = head;
	while (pointer) {
		if ((why = slab_bad_pointer(g, pointer))) {
			out->end = SLAB_WALK_OUTSIDE;
			out->pointer = pointer;
			break;
		}
		size_t index = (size_t)((pointer - g->base - g->red_left_pad) / g->size);
		if (position[index]) {
			out->end = SLAB_WALK_DUPLICATE;
			out->pointer = pointer;
			out->cycle_start = position[index] - 1;
			break;
		}
		out->objects[out->n] = pointer;
		position[index] = (uint32_t)++out->n;
		uint64_t slot = pointer + g->offset, stored;
		if (slot + 8 > g->end || slot < pointer) {
			out->end = SLAB_WALK_LINK_OUTSIDE;
			out->pointer = slot;
			break;
		}
		if ((err = read(arg, slot, &stored))) {
			err = vm_error_prefix(err, "freelist link of free object 0x%llx", (unsigned long long)pointer);
			break;
		}
		pointer = slab_decode_link(stored, g->random, slot);
	}
	free(position);
	if (!err)
		err = walk_message(g, out, why);
	if (err)
		slab_freelist_free(out);
	return err;
}

void slab_freelist_free(struct slab_freelist *f)
{
	free(f->objects);
	free(f->message);
	memset(f, 0, sizeof(*f));
}

size_t slab_freelist_count(const struct slab_freelist *f)
{
	return f->n + (f->end == SLAB_WALK_OUTSIDE && !(f->pointer & 1));
}

/* --- The model. ---------------------------------------------------------------------------- */

struct member_req {
	const char *type, *path;
	uint64_t *dst;
	bool *present; /* optional member: cleared when missing */
};

static struct vm_error *read_possible_cpus(struct slab_model *m)
{
	struct kernel *k = m->k;
	uint64_t ids_addr, mask_addr, pco_addr;
	uint32_t nr_ids;
	struct vm_error *err;
	if ((err = kernel_symbol_runtime(k, "nr_cpu_ids", &ids_addr)) || (err = kernel_read_u32(k, ids_addr, &nr_ids)))
		return vm_error_prefix(err, "slab: reading nr_cpu_ids");
	if (nr_ids == 0 || nr_ids > KERNEL_MAX_CPUS)
		return vm_error_create(VM_ERR_CORRUPT, ids_addr, "slab: nr_cpu_ids at 0x%llx is %u: corrupt",
				       (unsigned long long)ids_addr, nr_ids);
	uint64_t mask[KERNEL_MAX_CPUS / 64] = { 0 };
	if ((err = kernel_symbol_runtime(k, "__cpu_possible_mask", &mask_addr)) ||
	    (err = kernel_read_kva(k, mask_addr, mask, (nr_ids + 63) / 64 * 8)))
		return vm_error_prefix(err, "slab: reading __cpu_possible_mask");
	uint64_t *offsets = calloc(nr_ids, sizeof(*offsets));
	m->cpu_offset = calloc(nr_ids, sizeof(*m->cpu_offset));
	m->cpu_id = calloc(nr_ids, sizeof(*m->cpu_id));
	if (!offsets || !m->cpu_offset || !m->cpu_id) {
		free(offsets);
		return &vm_error_nomem;
	}
	/* Without __per_cpu_offset (no SMP) every CPU's copy is the symbol itself, as in target.py. */
	err = kernel_symbol_runtime(k, "__per_cpu_offset", &pco_addr);
	if (err)
		vm_error_destroy(err);
	else if ((err = kernel_read_kva(k, pco_addr, offsets, nr_ids * sizeof(*offsets)))) {
		free(offsets);
		return vm_error_prefix(err, "slab: reading __per_cpu_offset");
	}
	for (uint32_t c = 0; c < nr_ids; c++) {
		if (!((mask[c / 64] >> (c % 64)) & 1))
			continue;
		m->cpu_id[m->ncpus] = (int)c;
		m->cpu_offset[m->ncpus++] = offsets[c];
	}
	free(offsets);
	return NULL;
}

struct vm_error *slab_model_open(struct kernel *k, struct slab_model **ret)
{
	*ret = NULL;
	if (!k->vml)
		return vm_error_create(VM_ERR_UNSUPPORTED, 0, "slab caches need vmlinux with debug info (--vmlinux)");
	struct slab_model *m = calloc(1, sizeof(*m));
	if (!m)
		return &vm_error_nomem;
	m->k = k;
	m->kc.has_random = m->kc.has_red_left_pad = true;
	m->cpu.has_partial = true;
	m->node.has_counters = m->node.has_full = true;
	bool counters2 = true;
	const struct member_req reqs[] = {
		{ "kmem_cache", "cpu_slab", &m->kc.cpu_slab, NULL },
		{ "kmem_cache", "flags", &m->kc.flags, NULL },
		{ "kmem_cache", "size", &m->kc.size, NULL },
		{ "kmem_cache", "object_size", &m->kc.object_size, NULL },
		{ "kmem_cache", "offset", &m->kc.offset, NULL },
		{ "kmem_cache", "oo", &m->kc.oo, NULL },
		{ "kmem_cache", "name", &m->kc.name, NULL },
		{ "kmem_cache", "list", &m->kc.list, NULL },
		{ "kmem_cache", "node", &m->kc.node, NULL },
		{ "kmem_cache", "random", &m->kc.random, &m->kc.has_random },
		{ "kmem_cache", "red_left_pad", &m->kc.red_left_pad, &m->kc.has_red_left_pad },
		{ "kmem_cache_cpu", "freelist", &m->cpu.freelist, NULL },
		{ "kmem_cache_cpu", "slab", &m->cpu.slab, NULL },
		{ "kmem_cache_cpu", "partial", &m->cpu.partial, &m->cpu.has_partial },
		{ "kmem_cache_node", "nr_partial", &m->node.nr_partial, NULL },
		{ "kmem_cache_node", "partial", &m->node.partial, NULL },
		{ "kmem_cache_node", "nr_slabs", &m->node.nr_slabs, &m->node.has_counters },
		{ "kmem_cache_node", "total_objects", &m->node.total_objects, &counters2 },
		{ "kmem_cache_node", "full", &m->node.full, &m->node.has_full },
		{ "slab", "slab_list", &m->sl.slab_list, NULL },
		{ "slab", "next", &m->sl.next, NULL },
		{ "slab", "slab_cache", &m->sl.slab_cache, NULL },
		{ "slab", "freelist", &m->sl.freelist, NULL },
		{ "slab", "counters", &m->sl.counters, NULL },
	};
	struct vm_error *err = NULL;
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]) && !err; i++) {
		err = vmlinux_member(k->vml, reqs[i].type, reqs[i].path, reqs[i].dst, NULL);
		if (err && reqs[i].present && err->code == VM_ERR_NOT_FOUND) {
			vm_error_destroy(err);
			err = NULL;
			*reqs[i].present = false;
		}
	}
	m->node.has_counters = m->node.has_counters && counters2;
	if (!err)
		err = vmlinux_type_size(k->vml, "kmem_cache_cpu", &m->cpu.size);
	if (!err)
		err = vmlinux_type_size(k->vml, "kmem_cache_node", &m->node.size);
	if (!err)
		err = vmlinux_type_size(k->vml, "slab", &m->sl.size);
	if (!err)
		err = vmlinux_type_size(k->vml, "page", &m->page_struct_size);
	if (!err && (!m->page_struct_size || m->cpu.size > 4096 || m->node.size > 4096 || m->sl.size > 4096))
		err = vm_error_create(VM_ERR_FORMAT, 0, "slab: implausible struct sizes in DWARF");
	if (!err)
		err = kernel_symbol_runtime(k, "slab_caches", &m->slab_caches);
	if (err)
		goto fail;

	uint64_t addr;
	uint32_t nodes = 1;
	if ((err = kernel_symbol_runtime(k, "nr_node_ids", &addr))) {
		vm_error_destroy(err); /* a kernel without NUMA: one node */
	} else if ((err = kernel_read_u32(k, addr, &nodes))) {
		goto fail;
	}
	if (nodes == 0 || nodes > SLAB_MAX_NODES) {
		err = vm_error_create(VM_ERR_CORRUPT, addr, "slab: nr_node_ids at 0x%llx is %u: corrupt",
				      (unsigned long long)addr, nodes);
		goto fail;
	}
	m->nr_nodes = (int)nodes;
	m->page_offset = kernel_info(k)->page_offset;
	m->vmemmap = kernel_info(k)->vmemmap_base;
	if ((err = read_possible_cpus(m)))
		goto fail;
	*ret = m;
	return NULL;
fail:
	slab_model_close(m);
	return vm_error_prefix(err, "slab model");
}

void slab_model_close(struct slab_model *m)
{
	if (!m)
		return;
	free(m->cpu_offset);
	free(m->cpu_id);
	free(m);
}

/* --- Kernel structures. -------------------------------------------------------------------- */

static uint64_t page_to_virt(const struct slab_model *m, uint64_t page)
{
	/* Floor division, as slab.py: a pointer below vmemmap maps below the direct map. */
	int64_t delta = (int64_t)(page - m->vmemmap), size = (int64_t)m->page_struct_size;
	int64_t pfn = delta / size - (delta % size < 0);
	return m->page_offset + ((uint64_t)pfn << SLAB_PAGE_SHIFT);
}

struct slab_info {
	uint64_t addr, cache, freelist, next, list_next, base;
	int inuse, objects, frozen;
};

static struct vm_error *read_slab(struct slab_model *m, uint64_t addr, struct slab_info *s)
{
	uint8_t buf[4096];
	struct vm_error *err = kernel_read_kva(m->k, addr, buf, m->sl.size);
	if (err)
		return vm_error_prefix(err, "struct slab 0x%llx", (unsigned long long)addr);
	uint64_t counters = load_u64(buf + m->sl.counters);
	s->addr = addr;
	s->cache = load_u64(buf + m->sl.slab_cache);
	s->freelist = load_u64(buf + m->sl.freelist);
	s->next = load_u64(buf + m->sl.next);
	s->list_next = load_u64(buf + m->sl.slab_list);
	s->inuse = (int)(counters & 0xffff);
	s->objects = (int)((counters >> 16) & 0x7fff);
	s->frozen = (int)((counters >> 31) & 1);
	s->base = page_to_virt(m, addr);
	return NULL;
}

struct node_info {
	uint64_t addr, nr_partial, partial_head, partial_first, nr_slabs, total_objects, full_head, full_first;
};

static struct vm_error *read_node(struct slab_model *m, uint64_t ptr, struct node_info *n)
{
	uint8_t buf[4096];
	struct vm_error *err = kernel_read_kva(m->k, ptr, buf, m->node.size);
	if (err)
		return vm_error_prefix(err, "struct kmem_cache_node 0x%llx", (unsigned long long)ptr);
	memset(n, 0, sizeof(*n));
	n->addr = ptr;
	n->nr_partial = load_u64(buf + m->node.nr_partial);
	n->partial_head = ptr + m->node.partial;
	n->partial_first = load_u64(buf + m->node.partial);
	if (m->node.has_counters) {
		n->nr_slabs = load_u64(buf + m->node.nr_slabs);
		n->total_objects = load_u64(buf + m->node.total_objects);
	}
	if (m->node.has_full) {
		n->full_head = ptr + m->node.full;
		n->full_first = load_u64(buf + m->node.full);
	}
	return NULL;
}

static struct vm_error *read_cpu(struct slab_model *m, const struct slab_cache *c, int i, uint64_t *freelist,
				 uint64_t *slab, uint64_t *partial)
{
	uint8_t buf[4096];
	uint64_t addr = c->cpu_slab + m->cpu_offset[i];
	struct vm_error *err = kernel_read_kva(m->k, addr, buf, m->cpu.size);
	if (err)
		return vm_error_prefix(err, "%s: CPU %d kmem_cache_cpu 0x%llx", c->name, m->cpu_id[i],
				       (unsigned long long)addr);
	*freelist = load_u64(buf + m->cpu.freelist);
	*slab = load_u64(buf + m->cpu.slab);
	*partial = m->cpu.has_partial ? load_u64(buf + m->cpu.partial) : 0;
	return NULL;
}

static struct vm_error *read_name(struct slab_model *m, uint64_t ptr, char *name, size_t size)
{
	/* Up to size - 1 bytes, never crossing into the next page unless the string does. */
	size_t got = 0;
	while (got < size - 1) {
		uint64_t here = ptr + got;
		size_t chunk = 4096 - (here & 4095);
		if (chunk > size - 1 - got)
			chunk = size - 1 - got;
		struct vm_error *err = kernel_read_kva(m->k, here, name + got, chunk);
		if (err)
			return err;
		void *nul = memchr(name + got, '\0', chunk);
		if (nul)
			return NULL;
		got += chunk;
	}
	name[size - 1] = '\0';
	return NULL;
}

static struct vm_error *read_cache(struct slab_model *m, uint64_t addr, struct slab_cache *c, uint64_t *list_next)
{
	size_t len = m->kc.node + 8 * (size_t)m->nr_nodes;
	uint8_t *buf = malloc(len);
	c->nodes = calloc((size_t)m->nr_nodes, sizeof(*c->nodes));
	if (!buf || !c->nodes) {
		free(buf);
		return &vm_error_nomem;
	}
	struct vm_error *err = kernel_read_kva(m->k, addr, buf, len);
	if (err) {
		free(buf);
		return vm_error_prefix(err, "struct kmem_cache 0x%llx", (unsigned long long)addr);
	}
	c->addr = addr;
	c->cpu_slab = load_u64(buf + m->kc.cpu_slab);
	c->flags = load_u32(buf + m->kc.flags);
	c->size = load_u32(buf + m->kc.size);
	c->object_size = load_u32(buf + m->kc.object_size);
	c->offset = load_u32(buf + m->kc.offset);
	uint32_t oo = load_u32(buf + m->kc.oo);
	c->order = oo >> 16;
	c->oo_objects = oo & 0xffff;
	c->random = m->kc.has_random ? load_u64(buf + m->kc.random) : 0;
	c->red_left_pad = m->kc.has_red_left_pad ? load_u32(buf + m->kc.red_left_pad) : 0;
	c->slab_bytes = c->order < 52 ? (uint64_t)1 << (SLAB_PAGE_SHIFT + c->order) : 0;
	*list_next = load_u64(buf + m->kc.list);
	for (int i = 0; i < m->nr_nodes; i++)
		c->nodes[i] = load_u64(buf + m->kc.node + 8 * (size_t)i);
	uint64_t name_ptr = load_u64(buf + m->kc.name);
	free(buf);
	if ((err = read_name(m, name_ptr, c->name, sizeof(c->name))))
		return vm_error_prefix(err, "name of kmem_cache 0x%llx", (unsigned long long)addr);
	return NULL;
}

void slab_caches_free(struct slab_cache *caches, size_t n)
{
	for (size_t i = 0; caches && i < n; i++)
		free(caches[i].nodes);
	free(caches);
}

struct vm_error *slab_caches(struct slab_model *m, struct slab_cache **caches, size_t *n)
{
	struct slab_cache *v = NULL;
	size_t count = 0, cap = 0;
	struct addr_map seen = { 0 };
	struct vm_error *err = NULL;
	uint64_t head = m->slab_caches, entry;
	if ((err = kernel_read_u64(m->k, head, &entry))) {
		err = vm_error_prefix(err, "reading slab_caches at 0x%llx", (unsigned long long)head);
		goto out;
	}
	while (entry != head) {
		uint64_t addr = entry - m->kc.list;
		bool found;
		if (!addr_map_insert(&seen, addr, 0, &found, NULL)) {
			err = &vm_error_nomem;
			goto out;
		}
		if (found) {
			err = vm_error_create(VM_ERR_CORRUPT, addr, "slab_caches list loops at kmem_cache 0x%llx",
					      (unsigned long long)addr);
			goto out;
		}
		if (count >= SLAB_MAX_CACHES) {
			err = vm_error_create(VM_ERR_CORRUPT, addr, "slab_caches list exceeds %u caches at kmem_cache 0x%llx",
					      SLAB_MAX_CACHES, (unsigned long long)addr);
			goto out;
		}
		if ((err = grow_array(&v, &cap, count + 1, sizeof(*v))))
			goto out;
		memset(&v[count], 0, sizeof(v[count]));
		err = read_cache(m, addr, &v[count], &entry);
		count++;
		if (err)
			goto out;
	}
out:
	addr_map_free(&seen);
	if (err) {
		slab_caches_free(v, count);
		return err;
	}
	*caches = v;
	*n = count;
	return NULL;
}

struct vm_error *slab_find_cache(struct slab_cache *caches, size_t n, const char *spec, size_t *index)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(caches[i].name, spec) == 0) {
			*index = i;
			return NULL;
		}
	}
	char *end;
	unsigned long long addr = strtoull(spec, &end, 0);
	if (end == spec || *end)
		return vm_error_create(VM_ERR_NOT_FOUND, 0, "no slab cache named '%s'", spec);
	for (size_t i = 0; i < n; i++) {
		if (caches[i].addr == addr) {
			*index = i;
			return NULL;
		}
	}
	return vm_error_create(VM_ERR_NOT_FOUND, addr, "'%s' is neither a cache name nor a kmem_cache on slab_caches",
			       spec);
}

/* --- Cache statistics. --------------------------------------------------------------------- */

static struct slab_geometry geometry(const struct slab_cache *c, const struct slab_info *s)
{
	/* At most one slab of the cache's order: a corrupt object count must not run into other memory. */
	uint64_t objects = s->objects ? (uint64_t)s->objects : c->oo_objects;
	uint64_t extent = c->red_left_pad + objects * c->size;
	if (extent > c->slab_bytes)
		extent = c->slab_bytes;
	if (extent < 8)
		extent = 8;
	struct slab_geometry g = { s->base, s->base + extent, c->size, c->offset, c->red_left_pad, c->random };
	return g;
}

static struct vm_error *read_link(void *arg, uint64_t addr, uint64_t *value)
{
	return kernel_read_u64(arg, addr, value);
}

/* Follow one freelist of slab s. */
static struct vm_error *walk(struct slab_model *m, const struct slab_cache *c, const struct slab_info *s,
			     uint64_t head, struct slab_freelist *out)
{
	struct slab_geometry g = geometry(c, s);
	struct vm_error *err = slab_walk_freelist(&g, head, read_link, m->k, out);
	if (err)
		return vm_error_prefix(err, "%s: slab 0x%llx", c->name, (unsigned long long)s->addr);
	return NULL;
}

/*
 * Slabs on a list_head list linked through slab.slab_list, in order. Stops at a loop or past
 * limit entries; *problem then says which.
 */
static struct vm_error *list_slabs(struct slab_model *m, uint64_t head, uint64_t first, uint64_t limit,
				   uint64_t **slabs, size_t *n, char **problem)
{
	struct addr_map seen = { 0 };
	size_t count = 0, cap = 0;
	uint64_t *v = NULL;
	struct vm_error *err = NULL;
	*problem = NULL;
	if (limit > SLAB_MAX_LIST)
		limit = SLAB_MAX_LIST;
	for (uint64_t entry = first; entry != head && entry;) {
		bool found;
		if (!addr_map_insert(&seen, entry, 0, &found, NULL)) {
			err = &vm_error_nomem;
			break;
		}
		if (found || count > limit) {
			if (asprintf(problem, "list at 0x%llx loops or exceeds %llu entries", (unsigned long long)head,
				     (unsigned long long)limit) < 0) {
				*problem = NULL;
				err = &vm_error_nomem;
			}
			break;
		}
		if ((err = grow_array(&v, &cap, count + 1, sizeof(*v))))
			break;
		v[count++] = entry - m->sl.slab_list;
		if ((err = kernel_read_u64(m->k, entry, &entry))) {
			err = vm_error_prefix(err, "slab list at 0x%llx", (unsigned long long)head);
			break;
		}
	}
	addr_map_free(&seen);
	if (err) {
		free(v);
		free(*problem);
		*problem = NULL;
		return err;
	}
	*slabs = v;
	*n = count;
	return NULL;
}

struct vm_error *slab_cache_stats(struct slab_model *m, const struct slab_cache *c, struct slab_stats *out)
{
	int64_t total = 0, slabs = 0, free_objects = 0;
	struct vm_error *err = NULL;
	struct slab_info s;
	for (int i = 0; i < m->nr_nodes && !err; i++) {
		struct node_info node;
		if (!c->nodes[i])
			continue;
		if ((err = read_node(m, c->nodes[i], &node)))
			break;
		total += (int64_t)node.total_objects;
		slabs += (int64_t)node.nr_slabs;
		uint64_t *partial = NULL;
		size_t npartial = 0;
		char *problem;
		err = list_slabs(m, node.partial_head, node.partial_first, node.nr_partial + 1000, &partial, &npartial,
				 &problem);
		free(problem);
		for (size_t j = 0; j < npartial && !err; j++)
			if (!(err = read_slab(m, partial[j], &s)))
				free_objects += s.objects - s.inuse;
		free(partial);
	}
	for (int i = 0; i < m->ncpus && !err; i++) {
		uint64_t freelist, slab, partial;
		if ((err = read_cpu(m, c, i, &freelist, &slab, &partial)))
			break;
		if (slab) {
			if ((err = read_slab(m, slab, &s)))
				break;
			free_objects += s.objects - s.inuse;
			if (freelist) {
				struct slab_freelist f;
				if ((err = walk(m, c, &s, freelist, &f)))
					break;
				free_objects += (int64_t)slab_freelist_count(&f);
				slab_freelist_free(&f);
			}
		}
		struct addr_map seen = { 0 };
		for (unsigned steps = 0; partial && steps < SLAB_MAX_LIST; steps++) {
			bool found;
			if (!addr_map_insert(&seen, partial, 0, &found, NULL)) {
				err = &vm_error_nomem;
				break;
			}
			if (found || (err = read_slab(m, partial, &s)))
				break;
			free_objects += s.objects - s.inuse;
			partial = s.next;
		}
		addr_map_free(&seen);
	}
	if (err)
		return vm_error_prefix(err, "slab cache %s (kmem_cache 0x%llx)", c->name, (unsigned long long)c->addr);
	out->total = total;
	out->slabs = slabs;
	out->allocated = total - free_objects;
	return NULL;
}

/* --- Freelist check. ----------------------------------------------------------------------- */

struct source {
	char where[40];
	uint64_t slab;
	bool cpu;                 /* a CPU slab: also walk cpu_freelist */
	uint64_t cpu_freelist;
};

struct sources {
	struct source *v;
	size_t n, cap;
};

static bool add_source(struct sources *s, const char *where, uint64_t slab, bool cpu, uint64_t freelist)
{
	if (grow_array(&s->v, &s->cap, s->n + 1, sizeof(*s->v)))
		return false;
	struct source *e = &s->v[s->n++];
	snprintf(e->where, sizeof(e->where), "%s", where);
	e->slab = slab;
	e->cpu = cpu;
	e->cpu_freelist = freelist;
	return true;
}

/* Every slab reachable from the per-CPU structures and the node lists, with list problems. */
static struct vm_error *cache_sources(struct slab_model *m, const struct slab_cache *c, struct sources *src,
				      struct strv *problems)
{
	struct vm_error *err = NULL;
	char where[40];
	for (int i = 0; i < m->ncpus && !err; i++) {
		int cpu = m->cpu_id[i];
		uint64_t freelist, slab, partial;
		if ((err = read_cpu(m, c, i, &freelist, &slab, &partial)))
			return err;
		snprintf(where, sizeof(where), "CPU %d slab", cpu);
		if (slab) {
			if (!add_source(src, where, slab, true, freelist))
				return &vm_error_nomem;
		} else if (freelist) {
			strv_addf(problems, "CPU %d: freelist 0x%llx without a CPU slab", cpu, (unsigned long long)freelist);
		}
		snprintf(where, sizeof(where), "CPU %d partial", cpu);
		struct addr_map seen = { 0 };
		while (partial) {
			bool found;
			if (!addr_map_insert(&seen, partial, 0, &found, NULL)) {
				err = &vm_error_nomem;
				break;
			}
			if (found || seen.n > SLAB_CPU_PARTIAL_LIMIT + 1) {
				strv_addf(problems, "CPU %d partial chain loops at slab 0x%llx", cpu,
					  (unsigned long long)partial);
				break;
			}
			if (!add_source(src, where, partial, false, 0)) {
				err = &vm_error_nomem;
				break;
			}
			struct slab_info s;
			if ((err = read_slab(m, partial, &s)))
				break;
			partial = s.next;
		}
		addr_map_free(&seen);
	}
	for (int i = 0; i < m->nr_nodes && !err; i++) {
		struct node_info node;
		if (!c->nodes[i])
			continue;
		if ((err = read_node(m, c->nodes[i], &node)))
			break;
		uint64_t *slabs = NULL;
		size_t n = 0;
		char *problem = NULL;
		if ((err = list_slabs(m, node.partial_head, node.partial_first, node.nr_partial + 1000, &slabs, &n,
				      &problem)))
			break;
		if (problem)
			strv_addf(problems, "node %d partial: %s", i, problem);
		free(problem);
		if (n != node.nr_partial)
			strv_addf(problems, "node %d: nr_partial is %llu but the partial list has %zu slabs", i,
				  (unsigned long long)node.nr_partial, n);
		snprintf(where, sizeof(where), "node %d partial", i);
		for (size_t j = 0; j < n && !err; j++)
			if (!add_source(src, where, slabs[j], false, 0))
				err = &vm_error_nomem;
		free(slabs);
		if (err || !m->node.has_full)
			continue;
		if ((err = list_slabs(m, node.full_head, node.full_first, SLAB_FULL_LIMIT, &slabs, &n, &problem)))
			break;
		if (problem)
			strv_addf(problems, "node %d full: %s", i, problem);
		free(problem);
		snprintf(where, sizeof(where), "node %d full", i);
		for (size_t j = 0; j < n && !err; j++)
			if (!add_source(src, where, slabs[j], false, 0))
				err = &vm_error_nomem;
		free(slabs);
	}
	return err;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Duplicates found so far (sorted and made distinct at the end). */
struct u64v {
	uint64_t *v;
	size_t n, cap;
};

static bool u64v_add(struct u64v *d, uint64_t x)
{
	if (grow_array(&d->v, &d->cap, d->n + 1, sizeof(*d->v)))
		return false;
	d->v[d->n++] = x;
	return true;
}

/* The label slab.py gives a walk: "<where> CPU freelist" / "<where> slab freelist". */
static void walk_label(const struct slab_checked *chk, int w, char *buf, size_t size)
{
	snprintf(buf, size, "%s %s", chk->where, chk->walk_name[w]);
}

struct vm_error *slab_check_cache(struct slab_model *m, const struct slab_cache *c, struct slab_check *out)
{
	memset(out, 0, sizeof(*out));
	struct sources src = { 0 };
	struct strv problems = { 0 };
	struct addr_map owner = { 0 };
	struct u64v dups = { 0 };
	struct vm_error *err = cache_sources(m, c, &src, &problems);
	if (!err && src.n && !(out->slabs = calloc(src.n, sizeof(*out->slabs))))
		err = &vm_error_nomem;
	for (size_t i = 0; i < src.n && !err; i++) {
		const struct source *e = &src.v[i];
		struct slab_checked *chk = &out->slabs[out->nslabs];
		struct slab_info s;
		if ((err = read_slab(m, e->slab, &s)))
			break;
		out->nslabs++;
		snprintf(chk->where, sizeof(chk->where), "%s", e->where);
		chk->slab = e->slab;
		chk->base = s.base;
		chk->objects = s.objects;
		chk->inuse = s.inuse;
		if (e->cpu)
			chk->walk_name[chk->nwalks++] = "CPU freelist";
		chk->walk_name[chk->nwalks++] = "slab freelist";
		if (s.cache != c->addr)
			strv_addf(&problems, "%s: slab 0x%llx belongs to kmem_cache 0x%llx, not 0x%llx", e->where,
				  (unsigned long long)e->slab, (unsigned long long)s.cache, (unsigned long long)c->addr);
		bool last_clean = true;
		for (int w = 0; w < chk->nwalks && !err; w++) {
			struct slab_freelist f;
			char label[64], other[64];
			if ((err = walk(m, c, &s, chk->walk_name[w][0] == 'C' ? e->cpu_freelist : s.freelist, &f)))
				break;
			walk_label(chk, w, label, sizeof(label));
			for (size_t j = 0; j < f.n && !err; j++) {
				bool found;
				uint32_t prev;
				uint32_t id = (uint32_t)(out->nslabs - 1) * 2 + (uint32_t)w;
				if (!addr_map_insert(&owner, f.objects[j], id, &found, &prev) ||
				    (found && !u64v_add(&dups, f.objects[j]))) {
					err = &vm_error_nomem;
					break;
				}
				if (found) {
					walk_label(&out->slabs[prev / 2], (int)(prev % 2), other, sizeof(other));
					strv_addf(&problems, "duplicate freelist object 0x%llx: on %s and %s",
						  (unsigned long long)f.objects[j], other, label);
				}
			}
			if (!err && f.end != SLAB_WALK_END) {
				/* Every object on a loop is on the list more than once. */
				for (size_t j = f.cycle_start; f.end == SLAB_WALK_DUPLICATE && j < f.n && !err; j++)
					if (!u64v_add(&dups, f.objects[j]))
						err = &vm_error_nomem;
				strv_addf(&problems, "%s (slab 0x%llx): %s", label, (unsigned long long)e->slab, f.message);
			}
			chk->walk_count[w] = f.n;
			out->free_objects += f.n;
			last_clean = f.end == SLAB_WALK_END;
			slab_freelist_free(&f);
		}
		size_t slab_free = chk->walk_count[chk->nwalks - 1];
		if (!err && !e->cpu && last_clean && (int64_t)s.objects - s.inuse != (int64_t)slab_free)
			strv_addf(&problems, "%s slab 0x%llx: objects %d - inuse %d = %d but its freelist has %zu", e->where,
				  (unsigned long long)e->slab, s.objects, s.inuse, s.objects - s.inuse, slab_free);
	}
	if (!err && problems.failed)
		err = &vm_error_nomem;
	free(src.v);
	addr_map_free(&owner);
	if (err) {
		strv_free(&problems);
		free(dups.v);
		slab_check_free(out);
		return vm_error_prefix(err, "checking slab cache %s (kmem_cache 0x%llx)", c->name,
				       (unsigned long long)c->addr);
	}
	if (dups.n)
		qsort(dups.v, dups.n, sizeof(*dups.v), cmp_u64);
	size_t k = 0;
	for (size_t i = 0; i < dups.n; i++)
		if (!k || dups.v[k - 1] != dups.v[i])
			dups.v[k++] = dups.v[i];
	out->duplicates = dups.v;
	out->nduplicates = k;
	out->problems = problems.v;
	out->nproblems = problems.n;
	return NULL;
}

void slab_check_free(struct slab_check *chk)
{
	free(chk->slabs);
	for (size_t i = 0; i < chk->nproblems; i++)
		free(chk->problems[i]);
	free(chk->problems);
	free(chk->duplicates);
	memset(chk, 0, sizeof(*chk));
}
