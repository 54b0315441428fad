#include "pagecache.h"

#include <stdbool.h>
#include <stdlib.h>

#define NIL SIZE_MAX

struct slot {
	uint64_t key;
	bool valid;
	size_t prev, next; /* LRU list: head = most recent */
	size_t hnext;      /* hash chain */
};

struct pagecache {
	size_t n, page_size, nbuckets;
	struct slot *slots;
	size_t *buckets;
	size_t head, tail;
	uint8_t *data;
};

static size_t bucket_of(const struct pagecache *pc, uint64_t key)
{
	key ^= key >> 29;
	key *= 0xbf58476d1ce4e5b9ull;
	key ^= key >> 32;
	return (size_t)key & (pc->nbuckets - 1);
}

static void lru_unlink(struct pagecache *pc, size_t i)
{
	struct slot *s = &pc->slots[i];
	if (s->prev != NIL)
		pc->slots[s->prev].next = s->next;
	else
		pc->head = s->next;
	if (s->next != NIL)
		pc->slots[s->next].prev = s->prev;
	else
		pc->tail = s->prev;
}

static void lru_push_head(struct pagecache *pc, size_t i)
{
	struct slot *s = &pc->slots[i];
	s->prev = NIL;
	s->next = pc->head;
	if (pc->head != NIL)
		pc->slots[pc->head].prev = i;
	pc->head = i;
	if (pc->tail == NIL)
		pc->tail = i;
}

struct vm_error *pagecache_create(size_t npages, size_t page_size, struct pagecache **ret)
{
	if (npages == 0 || page_size == 0 || npages > SIZE_MAX / page_size)
		return vm_error_create(VM_ERR_INVALID, 0, "page cache of %zu pages of %zu bytes is not possible",
				       npages, page_size);
	struct pagecache *pc = calloc(1, sizeof(*pc));
	if (!pc)
		return &vm_error_nomem;
	pc->n = npages;
	pc->page_size = page_size;
	pc->nbuckets = 1;
	while (pc->nbuckets < 2 * npages)
		pc->nbuckets <<= 1;
	pc->slots = calloc(npages, sizeof(*pc->slots));
	pc->buckets = malloc(pc->nbuckets * sizeof(*pc->buckets));
	/* malloc leaves untouched slots unbacked, so a large cache costs only what it holds. */
	pc->data = malloc(npages * page_size);
	if (!pc->slots || !pc->buckets || !pc->data) {
		pagecache_destroy(pc);
		return &vm_error_nomem;
	}
	for (size_t b = 0; b < pc->nbuckets; b++)
		pc->buckets[b] = NIL;
	pc->head = pc->tail = NIL;
	for (size_t i = 0; i < npages; i++)
		lru_push_head(pc, i);
	*ret = pc;
	return NULL;
}

void pagecache_destroy(struct pagecache *pc)
{
	if (!pc)
		return;
	free(pc->slots);
	free(pc->buckets);
	free(pc->data);
	free(pc);
}

const uint8_t *pagecache_get(struct pagecache *pc, uint64_t key)
{
	for (size_t i = pc->buckets[bucket_of(pc, key)]; i != NIL; i = pc->slots[i].hnext) {
		if (pc->slots[i].key == key) {
			if (pc->head != i) {
				lru_unlink(pc, i);
				lru_push_head(pc, i);
			}
			return pc->data + i * pc->page_size;
		}
	}
	return NULL;
}

uint8_t *pagecache_claim(struct pagecache *pc)
{
	size_t i = pc->tail;
	struct slot *s = &pc->slots[i];
	if (s->valid) {
		size_t *link = &pc->buckets[bucket_of(pc, s->key)];
		while (*link != i)
			link = &pc->slots[*link].hnext;
		*link = s->hnext;
		s->valid = false;
	}
	return pc->data + i * pc->page_size;
}

void pagecache_publish(struct pagecache *pc, uint64_t key)
{
	size_t i = pc->tail;
	struct slot *s = &pc->slots[i];
	s->key = key;
	s->valid = true;
	size_t b = bucket_of(pc, key);
	s->hnext = pc->buckets[b];
	pc->buckets[b] = i;
	lru_unlink(pc, i);
	lru_push_head(pc, i);
}
