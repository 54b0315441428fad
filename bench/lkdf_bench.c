/*
 * libkdumpfile as the anchor for physical reads.
 *
 *   lkdf_bench open DUMP...
 *       open the dump, parse VMCOREINFO and set up address translation, then exit.
 *   lkdf_bench info [--max-run BYTES] DUMP...
 *       open time, format, page size, present pages, the longest run of present pages
 *       (the first run of --max-run bytes if there is one; present pages are then not all
 *       counted and reported as null) and VMCOREINFO, as one JSON object.
 *   lkdf_bench read --start PADDR --len BYTES [--chunk BYTES] DUMP...
 *       read [PADDR, PADDR+BYTES) of kernel-physical memory with kdump_read and print
 *       seconds, MB/s and a checksum of the bytes (bench/checksum.h).
 *
 * Several DUMP files are a split set. Output is JSON on stdout; errors go to stderr with exit 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libkdumpfile/kdumpfile.h>

#include "checksum.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void json_string(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* Peak RSS of this process (ru_maxrss would include the parent's memory from before exec). */
static long vm_hwm_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static kdump_ctx_t *open_dump(char **paths, int npaths)
{
	int fds[64];
	if (npaths < 1 || npaths > 64) {
		fprintf(stderr, "lkdf_bench: need 1..64 dump files, got %d\n", npaths);
		return NULL;
	}
	for (int i = 0; i < npaths; i++) {
		fds[i] = open(paths[i], O_RDONLY);
		if (fds[i] < 0) {
			fprintf(stderr, "lkdf_bench: %s: %s\n", paths[i], strerror(errno));
			return NULL;
		}
	}
	kdump_ctx_t *ctx = kdump_new();
	if (!ctx) {
		fprintf(stderr, "lkdf_bench: kdump_new failed\n");
		return NULL;
	}
	/* QEMU leaves utsname.machine empty in kdump headers; say x86_64 up front. */
	kdump_set_string_attr(ctx, KDUMP_ATTR_ARCH_NAME, KDUMP_ARCH_X86_64);
	if (kdump_open_fdset(ctx, npaths, fds) != KDUMP_OK) {
		fprintf(stderr, "lkdf_bench: %s: %s\n", paths[0], kdump_get_err(ctx));
		kdump_free(ctx);
		return NULL;
	}
	/* Without an OS type libkdumpfile neither parses VMCOREINFO nor sets up translation. */
	if (kdump_set_string_attr(ctx, KDUMP_ATTR_OSTYPE, "linux") != KDUMP_OK) {
		fprintf(stderr, "lkdf_bench: %s: %s\n", paths[0], kdump_get_err(ctx));
		kdump_free(ctx);
		return NULL;
	}
	return ctx;
}

static int cmd_info(char **paths, int npaths, uint64_t max_run)
{
	double t0 = now();
	kdump_ctx_t *ctx = open_dump(paths, npaths);
	if (!ctx)
		return 1;
	double t_open = now() - t0;

	const char *format = NULL;
	kdump_num_t page_size = 0;
	kdump_get_string_attr(ctx, KDUMP_ATTR_FILE_FORMAT, &format);
	kdump_get_number_attr(ctx, KDUMP_ATTR_PAGE_SIZE, &page_size);
	if (page_size == 0) {
		fprintf(stderr, "lkdf_bench: %s: no page size\n", paths[0]);
		return 1;
	}

	kdump_attr_t attr;
	if (kdump_get_attr(ctx, KDUMP_ATTR_FILE_PAGEMAP, &attr) != KDUMP_OK || attr.type != KDUMP_BITMAP) {
		fprintf(stderr, "lkdf_bench: %s: no file.pagemap: %s\n", paths[0], kdump_get_err(ctx));
		return 1;
	}
	kdump_bmp_t *bmp = attr.val.bitmap;
	uint64_t present = 0, best_start = 0, best_len = 0, max_pages = max_run / page_size;
	kdump_addr_t idx = 0;
	while (kdump_bmp_find_set(bmp, &idx) == KDUMP_OK) {
		kdump_addr_t end = idx;
		if (kdump_bmp_find_clear(bmp, &end) != KDUMP_OK)
			break;
		present += end - idx;
		uint64_t len = end - idx;
		if (len > best_len) {
			best_len = len;
			best_start = idx;
		}
		idx = end;
		/* Long enough: stop here, the bitmap walk is slow on some ELF dumps. */
		if (max_pages && best_len >= max_pages)
			break;
	}
	bool counted_all = !(max_pages && best_len >= max_pages);
	if (max_pages && best_len > max_pages)
		best_len = max_pages;

	char *vmcoreinfo = NULL;
	if (kdump_vmcoreinfo_raw(ctx, &vmcoreinfo) != KDUMP_OK)
		fprintf(stderr, "lkdf_bench: %s: no VMCOREINFO: %s\n", paths[0], kdump_get_err(ctx));

	printf("{\"open_seconds\": %.6f, \"format\": ", t_open);
	json_string(format);
	printf(", \"page_size\": %" PRIu64 ", \"present_pages\": ", (uint64_t)page_size);
	if (counted_all)
		printf("%" PRIu64, present);
	else
		printf("null");
	printf(", \"run_start\": %" PRIu64 ", \"run_bytes\": %" PRIu64 ", \"vmcoreinfo\": ",
	       best_start * page_size, best_len * page_size);
	json_string(vmcoreinfo);
	printf("}\n");
	free(vmcoreinfo);
	kdump_free(ctx);
	return 0;
}

static int cmd_open(char **paths, int npaths)
{
	double t0 = now();
	kdump_ctx_t *ctx = open_dump(paths, npaths);
	if (!ctx)
		return 1;
	char *vmcoreinfo = NULL;
	if (kdump_vmcoreinfo_raw(ctx, &vmcoreinfo) != KDUMP_OK) {
		fprintf(stderr, "lkdf_bench: %s: no VMCOREINFO: %s\n", paths[0], kdump_get_err(ctx));
		return 1;
	}
	printf("{\"open_seconds\": %.6f, \"vmcoreinfo_bytes\": %zu, \"vm_hwm_kb\": %ld}\n", now() - t0,
	       strlen(vmcoreinfo), vm_hwm_kb());
	free(vmcoreinfo);
	kdump_free(ctx);
	return 0;
}

static int cmd_read(char **paths, int npaths, uint64_t start, uint64_t len, size_t chunk)
{
	double t0 = now();
	kdump_ctx_t *ctx = open_dump(paths, npaths);
	if (!ctx)
		return 1;
	double t_open = now() - t0;
	unsigned char *buf = malloc(chunk);
	if (!buf)
		return 1;
	uint64_t sum = BENCH_CHECKSUM_SEED;
	double t1 = now();
	for (uint64_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		size_t got = n;
		if (kdump_read(ctx, KDUMP_KPHYSADDR, start + off, buf, &got) != KDUMP_OK) {
			fprintf(stderr, "lkdf_bench: read at paddr 0x%" PRIx64 ": %s\n", start + off + got,
				kdump_get_err(ctx));
			return 1;
		}
		sum = bench_checksum(sum, buf, n);
	}
	double secs = now() - t1;
	printf("{\"open_seconds\": %.6f, \"seconds\": %.6f, \"bytes\": %" PRIu64
	       ", \"mbps\": %.2f, \"checksum\": \"%016" PRIx64 "\", \"vm_hwm_kb\": %ld}\n",
	       t_open, secs, len, len / secs / 1e6, sum, vm_hwm_kb());
	free(buf);
	kdump_free(ctx);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: lkdf_bench open DUMP...\n"
			"       lkdf_bench info [--max-run BYTES] DUMP...\n"
			"       lkdf_bench read --start PADDR --len BYTES [--chunk BYTES] DUMP...\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	if (!strcmp(argv[1], "open"))
		return cmd_open(argv + 2, argc - 2);
	uint64_t start = 0, len = 0, max_run = 0;
	size_t chunk = 1 << 20;
	int i = 2;
	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		uint64_t v = strtoull(argv[i + 1], NULL, 0);
		if (!strcmp(argv[i], "--start"))
			start = v;
		else if (!strcmp(argv[i], "--len"))
			len = v;
		else if (!strcmp(argv[i], "--chunk"))
			chunk = v;
		else if (!strcmp(argv[i], "--max-run"))
			max_run = v;
		else
			return usage();
	}
	if (i >= argc || chunk == 0 || chunk % 8)
		return usage();
	if (!strcmp(argv[1], "info"))
		return cmd_info(argv + i, argc - i, max_run);
	if (!strcmp(argv[1], "read") && len > 0)
		return cmd_read(argv + i, argc - i, start, len, chunk);
	return usage();
}
