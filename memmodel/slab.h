/*
 * SLUB (Linux 6.x, mm/slub.c and mm/slab.h) over the kernel model: the cache list with crash
 * `kmem -s` figures, and a check of every freelist of one cache (crash `kmem -S`). The same
 * semantics as gdbscripts/vmcore/slab.py, whose text the stub's `monitor kmem` prints.
 *
 * Nothing is computed when the server starts: a model is opened per request (DWARF offsets come
 * from the vmlinux's type cache, so reopening is cheap). Every list walk is bounded and checks
 * for loops, so a corrupt dump ends in an error or a reported problem, never in a hang.
 */
#ifndef MEMMODEL_SLAB_H
#define MEMMODEL_SLAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "kernel.h"

/* --- Freelist decoding (pure: memory comes through a callback). --------------------------- */

/* Where the objects of one slab lie, and how its links are stored. */
struct slab_geometry {
	uint64_t base, end;       /* slab memory [base, end): only objects below end are walked */
	uint32_t size;            /* object stride (s->size), > 0 */
	uint32_t offset;          /* free pointer offset inside an object (s->offset) */
	uint32_t red_left_pad;    /* first object at base + red_left_pad */
	uint64_t random;          /* s->random; 0 without SLAB_FREELIST_HARDENED */
};

/* The link stored at slot (object + s->offset): stored ^ s->random ^ swab64(slot). */
uint64_t slab_decode_link(uint64_t stored, uint64_t random, uint64_t slot);

/* Why pointer cannot be a free object of the slab ("outside the slab", "not on an object
 * boundary"), or NULL when it can. */
const char *slab_bad_pointer(const struct slab_geometry *g, uint64_t pointer);

enum slab_walk_end {
	SLAB_WALK_END,            /* reached NULL */
	SLAB_WALK_OUTSIDE,        /* a pointer outside the slab or off an object boundary */
	SLAB_WALK_LINK_OUTSIDE,   /* an object's link slot lies past the slab's end */
	SLAB_WALK_DUPLICATE,      /* an object repeats: the list loops */
};

/* One freelist followed from its head. */
struct slab_freelist {
	uint64_t *objects;        /* distinct free objects in list order */
	size_t n;
	enum slab_walk_end end;
	uint64_t pointer;         /* OUTSIDE: the bad pointer; LINK_OUTSIDE: the slot; DUPLICATE: the object */
	size_t cycle_start;       /* DUPLICATE: the loop is objects[cycle_start..n) */
	char *message;            /* what went wrong (as slab.py words it), NULL at SLAB_WALK_END */
};

/* Reads the 8-byte link stored at addr. */
typedef struct vm_error *(*slab_read_fn)(void *arg, uint64_t addr, uint64_t *value);

/*
 * Follow a freelist from head. At most one pass over the slab's object slots: every step either
 * visits a new object or ends the walk. Errors only for memory that cannot be read or no memory.
 */
struct vm_error *slab_walk_freelist(const struct slab_geometry *g, uint64_t head, slab_read_fn read,
				    void *arg, struct slab_freelist *out);
void slab_freelist_free(struct slab_freelist *f);

/* Entries of a CPU freelist as crash's count_free_objects counts them: the distinct objects, plus
 * a bad pointer unless its bit 0 is set. */
size_t slab_freelist_count(const struct slab_freelist *f);

/* --- The kernel's caches. ------------------------------------------------------------------ */

struct slab_model;

struct vm_error *slab_model_open(struct kernel *k, struct slab_model **ret);
void slab_model_close(struct slab_model *m);

struct slab_cache {
	uint64_t addr;            /* struct kmem_cache * */
	char name[65];
	uint32_t flags, size, object_size, offset, order, oo_objects, red_left_pad;
	uint64_t random, cpu_slab;
	uint64_t slab_bytes;      /* PAGE_SIZE << order */
	uint64_t *nodes;          /* kmem_cache_node pointers, nr_node_ids of them (owned by the list) */
};

/* Every cache on slab_caches, in list order. */
struct vm_error *slab_caches(struct slab_model *m, struct slab_cache **caches, size_t *n);
void slab_caches_free(struct slab_cache *caches, size_t n);

/* The cache named spec, else the one at the address spec (a number); NULL error if found. */
struct vm_error *slab_find_cache(struct slab_cache *caches, size_t n, const char *spec, size_t *index);

/* crash `kmem -s` figures of one cache. */
struct slab_stats {
	int64_t allocated, total, slabs;
};
struct vm_error *slab_cache_stats(struct slab_model *m, const struct slab_cache *c, struct slab_stats *out);

/* One slab whose freelists a check walked. */
struct slab_checked {
	char where[40];           /* "CPU 1 slab", "CPU 0 partial", "node 0 partial", "node 0 full" */
	uint64_t slab, base;
	int objects, inuse;
	int nwalks;               /* 2 for a CPU slab (CPU freelist, slab freelist), else 1 */
	size_t walk_count[2];
	const char *walk_name[2]; /* "CPU freelist", "slab freelist" */
};

struct slab_check {
	struct slab_checked *slabs;
	size_t nslabs;
	char **problems;          /* one sentence each, in discovery order */
	size_t nproblems;
	uint64_t *duplicates;     /* sorted, distinct */
	size_t nduplicates;
	size_t free_objects;      /* objects on all walked freelists */
};

/* Walk every freelist reachable from the CPU slabs, CPU partial slabs and node partial (and full)
 * lists; report duplicates, bad pointers, loops and counter mismatches. */
struct vm_error *slab_check_cache(struct slab_model *m, const struct slab_cache *c, struct slab_check *out);
void slab_check_free(struct slab_check *chk);

#endif
