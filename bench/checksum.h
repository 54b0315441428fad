/* Order-dependent 64-bit checksum of a byte range, shared by the bench readers so that the
 * stub, libkdumpfile and the raw decompressor can be shown to have read the same bytes. */
#ifndef BENCH_CHECKSUM_H
#define BENCH_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t bench_checksum(uint64_t h, const unsigned char *p, size_t len)
{
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ULL;
	}
	for (; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

#define BENCH_CHECKSUM_SEED 0xcbf29ce484222325ULL

#endif
