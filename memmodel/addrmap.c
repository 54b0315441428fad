#include "addrmap.h"

#include <stdlib.h>
#include <string.h>

static size_t slot_of(uint64_t key, size_t cap)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
}

static bool grow(struct addr_map *m)
{
	size_t cap = m->cap ? m->cap * 2 : 256;
	struct addr_map grown = { calloc(cap, sizeof(uint64_t)), calloc(cap, sizeof(uint32_t)), cap, m->n };
	if (!grown.keys || !grown.values) {
		free(grown.keys);
		free(grown.values);
		return false;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->keys[i])
			continue;
		size_t j = slot_of(m->keys[i], cap);
		while (grown.keys[j])
			j = (j + 1) & (cap - 1);
		grown.keys[j] = m->keys[i];
		grown.values[j] = m->values[i];
	}
	free(m->keys);
	free(m->values);
	*m = grown;
	return true;
}

bool addr_map_insert(struct addr_map *m, uint64_t key, uint32_t value, bool *found, uint32_t *stored)
{
	if ((m->n + 1) * 2 > m->cap && !grow(m))
		return false;
	size_t j = slot_of(key, m->cap);
	for (; m->keys[j]; j = (j + 1) & (m->cap - 1)) {
		if (m->keys[j] == key) {
			*found = true;
			if (stored)
				*stored = m->values[j];
			return true;
		}
	}
	m->keys[j] = key;
	m->values[j] = value;
	m->n++;
	*found = false;
	return true;
}

void addr_map_free(struct addr_map *m)
{
	free(m->keys);
	free(m->values);
	memset(m, 0, sizeof(*m));
}
