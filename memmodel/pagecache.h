/* A bounded LRU cache of decoded pages, keyed by page frame number. Memory is npages * page_size. */
#ifndef MEMMODEL_PAGECACHE_H
#define MEMMODEL_PAGECACHE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct pagecache;

struct vm_error *pagecache_create(size_t npages, size_t page_size, struct pagecache **ret);
void pagecache_destroy(struct pagecache *pc);

/* The cached page for key (now the most recently used), or NULL. */
const uint8_t *pagecache_get(struct pagecache *pc, uint64_t key);

/*
 * A buffer to decode a page into: the least recently used slot, evicted. Call pagecache_publish()
 * once it holds the page for key; if decoding fails, don't: the slot stays free.
 */
uint8_t *pagecache_claim(struct pagecache *pc);
void pagecache_publish(struct pagecache *pc, uint64_t key);

#endif
