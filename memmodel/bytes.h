/* Loads of unaligned values from dump bytes. Dumps and host are both x86_64: little-endian. */
#ifndef MEMMODEL_BYTES_H
#define MEMMODEL_BYTES_H

#include <stdint.h>
#include <string.h>

static inline uint32_t load_u32(const void *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint64_t load_u64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

#endif
