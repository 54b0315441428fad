/*
 * "The limit" for bulk reads: the cost of producing the bytes of a physical range with nothing
 * but the decompressor. The compressed pages of [PADDR, PADDR+BYTES) are loaded into memory
 * first (not timed); then each repetition decompresses all of them, with the fastest library any
 * reader uses (libdeflate for zlib pages, as vmcore-gdbserver does; lzo, snappy, zstd), into one
 * page buffer and checksums it.
 * For an ELF dump the limit is copying the range out of the (page-cached) file with pread.
 *
 *   decompress_limit --start PADDR --len BYTES [--reps N] DUMP
 *
 * Plain kdump-compressed and ELF dumps only (flattened and split sets are reported as such).
 * Prints one JSON object: {"format", "compression", "seconds": [per repetition], "bytes",
 * "compressed_bytes", "checksum"}.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libdeflate.h>
#include <lzo/lzo1x.h>
#include <snappy-c.h>
#include <zstd.h>

#include "checksum.h"

#define FLAG_ZLIB 0x1
#define FLAG_LZO 0x2
#define FLAG_SNAPPY 0x4
#define FLAG_ZSTD 0x20

struct page_blob {
	uint32_t flags, size;
	size_t offset; /* into the compressed buffer */
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int fail(const char *path, const char *what, uint64_t off)
{
	fprintf(stderr, "decompress_limit: %s: %s (file offset 0x%" PRIx64 ")\n", path, what, off);
	return 1;
}

static bool pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + done);
		if (n <= 0)
			return false;
		done += n;
	}
	return true;
}

static void print_result(const char *format, const char *compression, const double *secs, int reps,
			 uint64_t len, uint64_t compressed, uint64_t sum)
{
	printf("{\"format\": \"%s\", \"compression\": \"%s\", \"seconds\": [", format, compression);
	for (int r = 0; r < reps; r++)
		printf("%s%.6f", r ? ", " : "", secs[r]);
	printf("], \"bytes\": %" PRIu64 ", \"compressed_bytes\": %" PRIu64 ", \"checksum\": \"%016" PRIx64
	       "\"}\n",
	       len, compressed, sum);
}

static int decompress_page(struct libdeflate_decompressor *inflater, const struct page_blob *p,
			   const unsigned char *src, unsigned char *dst, size_t page_size)
{
	const unsigned char *in = src + p->offset;
	if (p->flags & FLAG_ZLIB) {
		size_t out = 0;
		return libdeflate_zlib_decompress(inflater, in, p->size, dst, page_size, &out) == LIBDEFLATE_SUCCESS &&
				       out == page_size
			       ? 0
			       : -1;
	}
	if (p->flags & FLAG_LZO) {
		lzo_uint out = page_size;
		return lzo1x_decompress_safe(in, p->size, dst, &out, NULL) == LZO_E_OK && out == page_size ? 0 : -1;
	}
	if (p->flags & FLAG_SNAPPY) {
		size_t out = page_size;
		return snappy_uncompress((const char *)in, p->size, (char *)dst, &out) == SNAPPY_OK &&
				       out == page_size
			       ? 0
			       : -1;
	}
	if (p->flags & FLAG_ZSTD)
		return ZSTD_decompress(dst, page_size, in, p->size) == page_size ? 0 : -1;
	if (p->size != page_size)
		return -1;
	memcpy(dst, in, page_size);
	return 0;
}

static const char *compression_name(uint32_t flags)
{
	if (flags & FLAG_ZLIB)
		return "zlib";
	if (flags & FLAG_LZO)
		return "lzo";
	if (flags & FLAG_SNAPPY)
		return "snappy";
	if (flags & FLAG_ZSTD)
		return "zstd";
	return "none";
}

static int limit_kdump(const char *path, int fd, uint64_t start, uint64_t len, int reps)
{
	unsigned char hdr[464], sub[104];
	if (!pread_all(fd, hdr, sizeof(hdr), 0))
		return fail(path, "short header", 0);
	int32_t header_version, block_size, sub_hdr_size;
	uint32_t bitmap_blocks, max_mapnr32;
	memcpy(&header_version, hdr + 8, 4);
	memcpy(&block_size, hdr + 428, 4);
	memcpy(&sub_hdr_size, hdr + 432, 4);
	memcpy(&bitmap_blocks, hdr + 436, 4);
	memcpy(&max_mapnr32, hdr + 440, 4);
	if (block_size < 1024 || block_size > (1 << 20) || sub_hdr_size < 0 || bitmap_blocks == 0)
		return fail(path, "implausible kdump header", 0);
	uint64_t max_mapnr = max_mapnr32;
	if (header_version >= 6) {
		if (!pread_all(fd, sub, sizeof(sub), block_size))
			return fail(path, "short sub header", block_size);
		memcpy(&max_mapnr, sub + 96, 8);
	}
	size_t page_size = block_size;
	if (start % page_size || len % page_size)
		return fail(path, "range not page aligned", 0);
	uint64_t first_pfn = start / page_size, npages = len / page_size;
	if (first_pfn + npages > max_mapnr)
		return fail(path, "range beyond max_mapnr", 0);

	/* The 2nd bitmap (dumpable pages) is the second half of the bitmap blocks. */
	uint64_t bitmap2_off = (uint64_t)block_size * (1 + sub_hdr_size) + (uint64_t)bitmap_blocks / 2 * block_size;
	uint64_t desc_off = (uint64_t)block_size * (1 + sub_hdr_size + bitmap_blocks);
	uint64_t end_pfn = first_pfn + npages;
	size_t bitmap_bytes = (end_pfn + 7) / 8;
	unsigned char *bitmap = malloc(bitmap_bytes);
	if (!bitmap || !pread_all(fd, bitmap, bitmap_bytes, bitmap2_off))
		return fail(path, "cannot read 2nd bitmap", bitmap2_off);
	uint64_t index = 0;
	for (uint64_t pfn = 0; pfn < first_pfn; pfn++)
		index += (bitmap[pfn >> 3] >> (pfn & 7)) & 1;

	struct page_blob *pages = calloc(npages, sizeof(*pages));
	size_t cap = len, used = 0;
	unsigned char *blobs = malloc(cap);
	if (!pages || !blobs)
		return fail(path, "out of memory", 0);
	uint32_t seen_flags = 0;
	for (uint64_t i = 0; i < npages; i++) {
		uint64_t pfn = first_pfn + i;
		if (!((bitmap[pfn >> 3] >> (pfn & 7)) & 1))
			return fail(path, "page in range not dumpable", desc_off);
		unsigned char d[24];
		uint64_t off = desc_off + index * 24;
		if (!pread_all(fd, d, 24, off))
			return fail(path, "short page descriptor", off);
		int64_t data_off;
		uint32_t size, flags;
		memcpy(&data_off, d, 8);
		memcpy(&size, d + 8, 4);
		memcpy(&flags, d + 12, 4);
		if (size > page_size || data_off < 0)
			return fail(path, "bad page descriptor", off);
		if (used + size > cap) {
			cap *= 2;
			blobs = realloc(blobs, cap);
			if (!blobs)
				return fail(path, "out of memory", 0);
		}
		if (!pread_all(fd, blobs + used, size, data_off))
			return fail(path, "short page data", data_off);
		pages[i] = (struct page_blob){.flags = flags, .size = size, .offset = used};
		used += size;
		seen_flags |= flags;
		index++;
	}

	unsigned char *page = malloc(page_size);
	double *secs = calloc(reps, sizeof(double));
	struct libdeflate_decompressor *inflater = libdeflate_alloc_decompressor();
	if (!page || !secs || !inflater)
		return fail(path, "out of memory", 0);
	uint64_t sum = 0;
	for (int r = 0; r < reps; r++) {
		double t0 = now();
		sum = BENCH_CHECKSUM_SEED;
		for (uint64_t i = 0; i < npages; i++) {
			if (decompress_page(inflater, &pages[i], blobs, page, page_size))
				return fail(path, "page does not decompress", 0);
			sum = bench_checksum(sum, page, page_size);
		}
		secs[r] = now() - t0;
	}
	print_result("kdump", compression_name(seen_flags), secs, reps, len, used, sum);
	return 0;
}

static int limit_elf(const char *path, int fd, uint64_t start, uint64_t len, int reps)
{
	Elf64_Ehdr eh;
	if (!pread_all(fd, &eh, sizeof(eh), 0) || eh.e_ident[EI_CLASS] != ELFCLASS64)
		return fail(path, "not an ELF64 file", 0);
	Elf64_Phdr *ph = calloc(eh.e_phnum, sizeof(*ph));
	if (!ph || !pread_all(fd, ph, (size_t)eh.e_phnum * sizeof(*ph), eh.e_phoff))
		return fail(path, "short program headers", eh.e_phoff);
	/* The whole range must sit in one PT_LOAD's file bytes. */
	uint64_t file_off = UINT64_MAX;
	for (int i = 0; i < eh.e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && start >= ph[i].p_paddr &&
		    start + len <= ph[i].p_paddr + ph[i].p_filesz)
			file_off = ph[i].p_offset + (start - ph[i].p_paddr);
	if (file_off == UINT64_MAX)
		return fail(path, "range not inside one PT_LOAD", eh.e_phoff);
	size_t chunk = 1 << 20;
	unsigned char *buf = malloc(chunk);
	double *secs = calloc(reps, sizeof(double));
	uint64_t sum = 0;
	for (int r = 0; r < reps; r++) {
		double t0 = now();
		sum = BENCH_CHECKSUM_SEED;
		for (uint64_t off = 0; off < len; off += chunk) {
			size_t n = len - off < chunk ? len - off : chunk;
			if (!pread_all(fd, buf, n, file_off + off))
				return fail(path, "short read", file_off + off);
			sum = bench_checksum(sum, buf, n);
		}
		secs[r] = now() - t0;
	}
	print_result("elf", "none", secs, reps, len, len, sum);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t start = 0, len = 0;
	int reps = 5, i = 1;
	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		uint64_t v = strtoull(argv[i + 1], NULL, 0);
		if (!strcmp(argv[i], "--start"))
			start = v;
		else if (!strcmp(argv[i], "--len"))
			len = v;
		else if (!strcmp(argv[i], "--reps"))
			reps = (int)v;
		else
			i = argc;
	}
	if (i != argc - 1 || len == 0 || reps < 1) {
		fprintf(stderr, "usage: decompress_limit --start PADDR --len BYTES [--reps N] DUMP\n");
		return 2;
	}
	const char *path = argv[i];
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "decompress_limit: %s: %s\n", path, strerror(errno));
		return 1;
	}
	char magic[8];
	if (!pread_all(fd, magic, 8, 0))
		return fail(path, "shorter than 8 bytes", 0);
	if (!memcmp(magic, "KDUMP   ", 8))
		return limit_kdump(path, fd, start, len, reps);
	if (!memcmp(magic, ELFMAG, SELFMAG))
		return limit_elf(path, fd, start, len, reps);
	return fail(path, "neither plain kdump-compressed nor ELF (flattened or split sets are not handled)", 0);
}
