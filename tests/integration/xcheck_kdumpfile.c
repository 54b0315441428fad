/*
 * Read every page of a dump with memmodel and with libkdumpfile and compare. Prints one JSON
 * object: page counts by outcome, and the first few disagreements. With --bench, also times a
 * full sequential pass of each reader (MB/s over the pages both could read).
 * libkdumpfile 0.5.1 cannot read flattened files: --theirs FILE... gives it other files (the
 * same dump rearranged with makedumpfile -R) while memmodel reads the ones before.
 * Usage: xcheck_kdumpfile [--bench] FILE... [--theirs FILE...]
 *
 * One libkdumpfile quirk is counted apart, not as a disagreement: in an ELF dump whose PT_LOAD
 * file offsets are not page-aligned (QEMU's, makedumpfile -E's), it returns a page of zeros for
 * the page just below a PT_LOAD even when no PT_LOAD holds data for it; memmodel reports that
 * page as a hole or as excluded.
 */
#include <fcntl.h>
#include <libkdumpfile/kdumpfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dump.h"

#define MAX_REPORTED 10

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Error classes both readers can be compared on. */
static const char *our_class(enum vm_errcode c)
{
	switch (c) {
	case VM_ERR_EXCLUDED:
	case VM_ERR_HOLE:
	case VM_ERR_BEYOND:
	case VM_ERR_INCOMPLETE:
		return "nodata";
	case VM_ERR_CORRUPT:
		return "corrupt";
	default:
		return "other";
	}
}

static const char *their_class(kdump_status s)
{
	switch (s) {
	case KDUMP_ERR_NODATA:
		return "nodata";
	case KDUMP_ERR_CORRUPT:
		return "corrupt";
	default:
		return "other";
	}
}

static int is_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static int starts_segment(const struct dump_segment *segs, size_t n, uint64_t pa)
{
	for (size_t i = 0; i < n; i++)
		if (segs[i].paddr == pa)
			return 1;
	return 0;
}

static kdump_ctx_t *open_lkdf(int argc, char **files, int *fds)
{
	for (int i = 0; i < argc; i++) {
		fds[i] = open(files[i], O_RDONLY);
		if (fds[i] < 0) {
			perror(files[i]);
			return NULL;
		}
	}
	kdump_ctx_t *ctx = kdump_new();
	if (!ctx)
		return NULL;
	kdump_status st = kdump_open_fdset(ctx, (unsigned)argc, fds);
	if (st != KDUMP_OK) {
		fprintf(stderr, "libkdumpfile: %s\n", kdump_get_err(ctx));
		kdump_free(ctx);
		return NULL;
	}
	return ctx;
}

int main(int argc, char **argv)
{
	int bench = 0;
	if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
		bench = 1;
		argc--;
		argv++;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: xcheck_kdumpfile [--bench] FILE... [--theirs FILE...]\n");
		return 2;
	}
	int nfiles = argc - 1, ntheirs = nfiles;
	char **files = argv + 1, **theirs = files;
	for (int i = 0; i < nfiles; i++) {
		if (strcmp(files[i], "--theirs") == 0) {
			theirs = files + i + 1;
			ntheirs = nfiles - i - 1;
			nfiles = i;
		}
	}
	if (nfiles < 1 || ntheirs < 1) {
		fprintf(stderr, "usage: xcheck_kdumpfile [--bench] FILE... [--theirs FILE...]\n");
		return 2;
	}
	double t0 = now();
	struct dump *d;
	struct vm_error *err = dump_open((const char *const *)files, (size_t)nfiles, NULL, &d);
	double open_ms = (now() - t0) * 1e3;
	if (err) {
		fprintf(stderr, "memmodel: %s\n", err->message);
		return 1;
	}
	int *fds = calloc((size_t)ntheirs, sizeof(int));
	t0 = now();
	kdump_ctx_t *ctx = open_lkdf(ntheirs, theirs, fds);
	double lk_open_ms = (now() - t0) * 1e3;
	if (!ctx)
		return 1;
	const struct dump_desc *desc = dump_describe(d);
	uint32_t ps = desc->page_size;
	uint8_t *a = malloc(ps), *b = malloc(ps);
	uint64_t same = 0, both_err = 0, mismatch = 0, ours_only = 0, theirs_only = 0, class_diff = 0;
	uint64_t quirk = 0;
	const struct dump_segment *segs;
	size_t nsegs = dump_segments(d, &segs);
	int reported = 0;
	printf("{\"format\": \"%s\", \"description\": \"%s\", \"pages\": %llu, \"open_ms\": %.2f, "
	       "\"libkdumpfile_open_ms\": %.2f, \"disagreements\": [",
	       desc->format, desc->description, (unsigned long long)desc->max_pfn, open_ms, lk_open_ms);
	for (uint64_t pfn = 0; pfn < desc->max_pfn; pfn++) {
		uint64_t pa = pfn * ps;
		struct vm_error *e = dump_read_phys(d, pa, a, ps, false);
		size_t len = ps;
		kdump_status st = kdump_read(ctx, KDUMP_MACHPHYSADDR, pa, b, &len);
		const char *what = NULL;
		char detail[256] = "";
		if (!e && st == KDUMP_OK) {
			if (memcmp(a, b, ps) == 0) {
				same++;
			} else {
				mismatch++;
				what = "different bytes";
			}
		} else if (e && st != KDUMP_OK) {
			both_err++;
			if (strcmp(our_class(e->code), their_class(st)) != 0) {
				class_diff++;
				what = "different error class";
				snprintf(detail, sizeof(detail), "ours %s, libkdumpfile %s", vm_errcode_name(e->code),
					 kdump_strerror(st));
			}
		} else if (e && (e->code == VM_ERR_HOLE || e->code == VM_ERR_EXCLUDED) && is_zero(b, ps) && starts_segment(segs, nsegs, pa + ps)) {
			quirk++;
		} else if (e) {
			ours_only++;
			what = "only memmodel fails";
			snprintf(detail, sizeof(detail), "%s", vm_errcode_name(e->code));
		} else {
			theirs_only++;
			what = "only libkdumpfile fails";
			snprintf(detail, sizeof(detail), "%s", kdump_get_err(ctx));
		}
		if (what && reported < MAX_REPORTED)
			printf("%s{\"pfn\": %llu, \"what\": \"%s\", \"detail\": \"%s\"}", reported++ ? ", " : "",
			       (unsigned long long)pfn, what, detail);
		vm_error_destroy(e);
	}
	printf("], \"same\": %llu, \"both_error\": %llu, \"mismatch\": %llu, \"error_class_differs\": %llu, "
	       "\"only_memmodel_error\": %llu, \"only_libkdumpfile_error\": %llu, \"libkdumpfile_hole_quirk\": %llu",
	       (unsigned long long)same, (unsigned long long)both_err, (unsigned long long)mismatch,
	       (unsigned long long)class_diff, (unsigned long long)ours_only, (unsigned long long)theirs_only, (unsigned long long)quirk);
	if (bench) {
		/* Fresh readers so neither benefits from the other's cache. */
		dump_close(d);
		kdump_free(ctx);
		for (int i = 0; i < ntheirs; i++)
			close(fds[i]);
		err = dump_open((const char *const *)files, (size_t)nfiles, NULL, &d);
		ctx = open_lkdf(ntheirs, theirs, fds);
		if (err || !ctx) {
			fprintf(stderr, "reopen for --bench failed%s%s\n", err ? ": " : "", err ? err->message : "");
			return 1;
		}
		desc = dump_describe(d);
		uint64_t bytes = 0;
		t0 = now();
		for (uint64_t pfn = 0; pfn < desc->max_pfn; pfn++) {
			struct vm_error *e = dump_read_phys(d, pfn * ps, a, ps, false);
			bytes += e ? 0 : ps;
			vm_error_destroy(e);
		}
		double ours = now() - t0;
		uint64_t lbytes = 0;
		t0 = now();
		for (uint64_t pfn = 0; pfn < desc->max_pfn; pfn++) {
			size_t len = ps;
			if (kdump_read(ctx, KDUMP_MACHPHYSADDR, pfn * ps, b, &len) == KDUMP_OK)
				lbytes += ps;
		}
		double theirs = now() - t0;
		printf(", \"bench\": {\"memmodel_mb_s\": %.1f, \"libkdumpfile_mb_s\": %.1f, \"memmodel_s\": %.3f, "
		       "\"libkdumpfile_s\": %.3f}",
		       (double)bytes / 1e6 / ours, (double)lbytes / 1e6 / theirs, ours, theirs);
	}
	printf("}\n");
	dump_close(d);
	kdump_free(ctx);
	free(a);
	free(b);
	free(fds);
	return mismatch || class_diff || ours_only || theirs_only ? 3 : 0;
}
