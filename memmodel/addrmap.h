/*
 * A hash map from kernel addresses to small values (open addressing). Walks of kernel lists use
 * it as a visited set, so a corrupt list that loops ends with an error instead of running away.
 * Key 0 is never stored: no kernel object lives there.
 */
#ifndef MEMMODEL_ADDRMAP_H
#define MEMMODEL_ADDRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct addr_map {
	uint64_t *keys;
	uint32_t *values;
	size_t cap, n;
};

/*
 * Insert key with value unless present. *found tells which; when found and stored is not NULL,
 * *stored gets the value kept for key. false: out of memory (the map is unchanged).
 */
bool addr_map_insert(struct addr_map *m, uint64_t key, uint32_t value, bool *found, uint32_t *stored);
void addr_map_free(struct addr_map *m);

#endif
