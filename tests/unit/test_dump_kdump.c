/* kdump-compressed reader on fixtures: header versions, compressions, bitmaps, split, flattened. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dump.h"
#include "dump_fixture.h"
#include "dump_priv.h"

static const char vmci_text[] = "OSRELEASE=6.1.0-fixture\nPAGESIZE=4096\nNUMBER(phys_base)=16777216\n";

static struct dump *open_one(const char *path)
{
	struct dump *d = NULL;
	struct vm_error *err = dump_open(&path, 1, NULL, &d);
	if (err)
		fail_msg("open %s: %s", path, err->message);
	return d;
}

static void expect_error(struct dump *d, uint64_t pfn, enum vm_errcode code)
{
	uint8_t got[FX_PS];
	struct vm_error *err = dump_read_phys(d, pfn * FX_PS + 8, got, 16, false);
	assert_non_null(err);
	if (err->code != code)
		fail_msg("pfn %llu: got %s (%s), want %s", (unsigned long long)pfn, vm_errcode_name(err->code),
			 err->message, vm_errcode_name(code));
	assert_int_equal(err->addr, pfn * FX_PS);
	vm_error_destroy(err);
}

static const struct fx_page mixed[] = {
	{ 1, FX_RAW }, { 2, FX_ZLIB }, { 3, FX_LZO }, { 4, FX_SNAPPY }, { 5, FX_ZSTD }, { 6, FX_ZERO },
	{ 9, FX_ZLIB }, { 4100, FX_ZSTD }, { 4101, FX_RAW },
};

static void test_header_versions(void **state)
{
	(void)state;
	struct fx_buf notes = { 0 };
	fx_prstatus(&notes, 1, 0x100);
	fx_vmcoreinfo_note(&notes, vmci_text);
	for (int v = 1; v <= 6; v++) {
		struct fx_kdump k = { .version = v, .max_mapnr = 5000, .hole_lo = 7, .hole_hi = 9,
				      .pages = mixed, .npages = 9, .notes = &notes, .vmcoreinfo = vmci_text,
				      .dump_level = 31, .phys_base = 0x1000000 };
		struct fx_buf b = fx_kdump_build(&k);
		char *path = fx_save(&b);
		struct dump *d = open_one(path);
		const struct dump_desc *desc = dump_describe(d);
		assert_string_equal(desc->format, "kdump");
		assert_int_equal(desc->header_version, v);
		assert_int_equal(desc->max_pfn, 5000); /* v6: from max_mapnr_64, not the 32-bit field */
		assert_int_equal(desc->dump_level, 31);
		assert_int_equal(desc->page_size, FX_PS);
		assert_string_equal(desc->utsname_release, "6.1.0-fixture");
		for (size_t i = 0; i < 9; i++) {
			if (mixed[i].kind == FX_ZERO) {
				uint8_t got[FX_PS], zero[FX_PS] = { 0 };
				assert_null(dump_read_phys(d, mixed[i].pfn * FX_PS, got, FX_PS, false));
				assert_memory_equal(got, zero, FX_PS);
			} else {
				fx_expect_page(d, mixed[i].pfn);
			}
		}
		if (v >= 3)
			assert_string_equal(dump_vmcoreinfo(d), vmci_text);
		else
			assert_null(dump_vmcoreinfo(d));
		const struct dump_cpu_note *cpus;
		assert_int_equal(dump_cpu_notes(d, &cpus), v >= 4 ? 1 : 0);
		dump_close(d);
		fx_unlink(path);
		free(b.p);
	}
	free(notes.p);
}

static void test_page_classes(void **state)
{
	(void)state;
	struct fx_kdump k = { .version = 6, .max_mapnr = 5000, .hole_lo = 7, .hole_hi = 9, .pages = mixed, .npages = 9 };
	struct fx_buf b = fx_kdump_build(&k);
	char *path = fx_save(&b);
	struct dump *d = open_one(path);
	expect_error(d, 0, VM_ERR_EXCLUDED);
	expect_error(d, 7, VM_ERR_HOLE);
	expect_error(d, 5000, VM_ERR_BEYOND);
	assert_int_equal(dump_page_state(d, 7 * FX_PS), VM_ERR_HOLE);
	assert_int_equal(dump_page_state(d, 0), VM_ERR_EXCLUDED);
	assert_int_equal(dump_page_state(d, (uint64_t)5000 * FX_PS), VM_ERR_BEYOND);
	assert_int_equal(dump_page_state(d, UINT64_MAX), VM_ERR_BEYOND);
	/* zero_excluded fills excluded pages but still refuses holes. */
	uint8_t buf[3 * FX_PS], want[FX_PS], zero[FX_PS] = { 0 };
	assert_null(dump_read_phys(d, 0, buf, 3 * FX_PS, true));
	assert_memory_equal(buf, zero, FX_PS);
	fx_content(1, want);
	assert_memory_equal(buf + FX_PS, want, FX_PS);
	struct vm_error *err = dump_read_phys(d, 6 * FX_PS, buf, 2 * FX_PS, true);
	assert_non_null(err);
	assert_int_equal(err->code, VM_ERR_HOLE);
	vm_error_destroy(err);
	/* A read spanning two stored pages, unaligned. */
	uint8_t two[2 * FX_PS];
	fx_content(4100, two);
	fx_content(4101, two + FX_PS);
	assert_null(dump_read_phys(d, 4100 * FX_PS + 100, buf, FX_PS, false));
	assert_memory_equal(buf, two + 100, FX_PS);
	dump_close(d);
	fx_unlink(path);
	free(b.p);
}

static void test_incomplete_and_corrupt(void **state)
{
	(void)state;
	static const struct fx_page pages[] = {
		{ 1, FX_RAW }, { 2, FX_BADZLIB }, { 3, FX_OVERSIZE }, { 4, FX_SHORTRAW }, { 5, FX_LOST }, { 6, FX_ZLIB },
	};
	struct fx_kdump k = { .version = 6, .max_mapnr = 64, .pages = pages, .npages = 6 };
	struct fx_buf b = fx_kdump_build(&k);
	char *path = fx_save(&b);
	struct dump *d = open_one(path);
	assert_true(dump_describe(d)->incomplete);
	fx_expect_page(d, 1);
	expect_error(d, 2, VM_ERR_CORRUPT);
	expect_error(d, 3, VM_ERR_CORRUPT);
	expect_error(d, 4, VM_ERR_CORRUPT);
	expect_error(d, 5, VM_ERR_INCOMPLETE);
	assert_int_equal(dump_page_state(d, 5 * FX_PS), VM_ERR_INCOMPLETE);
	fx_expect_page(d, 6);
	uint8_t buf[FX_PS], zero[FX_PS] = { 0 };
	memset(buf, 1, sizeof(buf));
	assert_null(dump_read_phys(d, 5 * FX_PS, buf, FX_PS, true));
	assert_memory_equal(buf, zero, FX_PS);
	dump_close(d);
	fx_unlink(path);

	/* Cut the file after pfn 1's data (header, sub header, 2 bitmap blocks, 6 descriptors, zero
	 * page, one raw page): later pages are lost, earlier ones still read. */
	b.len = 4 * FX_PS + 6 * 24 + 2 * FX_PS;
	path = fx_save(&b);
	d = open_one(path);
	fx_expect_page(d, 1);
	expect_error(d, 2, VM_ERR_INCOMPLETE);
	expect_error(d, 6, VM_ERR_INCOMPLETE);
	dump_close(d);
	fx_unlink(path);
	free(b.p);
}

static void test_split_set(void **state)
{
	(void)state;
	struct fx_kdump k = { .version = 6, .max_mapnr = 5000, .hole_lo = 7, .hole_hi = 9, .pages = mixed, .npages = 9 };
	char *paths[3];
	uint64_t cuts[4] = { 0, 4, 4100, 5000 };
	for (int i = 0; i < 3; i++) {
		k.split_start = cuts[i];
		k.split_end = cuts[i + 1];
		struct fx_buf b = fx_kdump_build(&k);
		paths[i] = fx_save(&b);
		free(b.p);
	}
	/* Given in any order. */
	const char *order[3] = { paths[2], paths[0], paths[1] };
	struct dump *d = NULL;
	struct vm_error *err = dump_open(order, 3, NULL, &d);
	if (err)
		fail_msg("%s", err->message);
	assert_string_equal(dump_describe(d)->format, "split-kdump");
	for (size_t i = 0; i < 9; i++)
		if (mixed[i].kind != FX_ZERO)
			fx_expect_page(d, mixed[i].pfn);
	expect_error(d, 0, VM_ERR_EXCLUDED);
	expect_error(d, 7, VM_ERR_HOLE);
	dump_close(d);

	/* Part of the set: pages of the missing file are reported, not misread. */
	const char *part[2] = { paths[0], paths[2] };
	assert_null(dump_open(part, 2, NULL, &d));
	fx_expect_page(d, 1);
	fx_expect_page(d, 4101);
	expect_error(d, 5, VM_ERR_INCOMPLETE);
	dump_close(d);

	/* The same file twice overlaps. */
	const char *twice[2] = { paths[1], paths[1] };
	err = dump_open(twice, 2, NULL, &d);
	assert_non_null(err);
	assert_int_equal(err->code, VM_ERR_INVALID);
	vm_error_destroy(err);
	for (int i = 0; i < 3; i++)
		fx_unlink(paths[i]);
}

static void test_single_bitmap(void **state)
{
	(void)state;
	static const struct fx_page pages[] = { { 0, FX_RAW }, { 3, FX_ZLIB } };
	struct fx_kdump k = { .version = 1, .signature = "DISKDUMP", .max_mapnr = 16, .pages = pages, .npages = 2,
			      .single_bitmap = 1 };
	struct fx_buf b = fx_kdump_build(&k);
	char *path = fx_save(&b);
	struct dump *d = open_one(path);
	fx_expect_page(d, 0);
	fx_expect_page(d, 3);
	expect_error(d, 1, VM_ERR_HOLE);
	expect_error(d, 16, VM_ERR_BEYOND);
	dump_close(d);
	fx_unlink(path);
	free(b.p);
}

static void test_flattened(void **state)
{
	(void)state;
	struct fx_buf notes = { 0 };
	fx_vmcoreinfo_note(&notes, vmci_text);
	struct fx_kdump k = { .version = 6, .max_mapnr = 5000, .hole_lo = 7, .hole_hi = 9, .pages = mixed, .npages = 9,
			      .notes = &notes };
	struct fx_buf b = fx_kdump_build(&k);
	/* Records in reverse order, plus a second copy of the header (overlap: the last one wins):
	 * make that copy say 5 CPUs so the test sees which record won. */
	struct fx_buf f = fx_flatten(&b, 3000);
	uint32_t five = 5;
	memcpy(f.p + f.len - 16 - 512 + 460, &five, 4);
	char *path = fx_save(&f);
	struct dump *d = open_one(path);
	assert_string_equal(dump_describe(d)->format, "flattened-kdump");
	assert_int_equal(dump_describe(d)->nr_cpus, 5);
	for (size_t i = 0; i < 9; i++)
		if (mixed[i].kind != FX_ZERO)
			fx_expect_page(d, mixed[i].pfn);
	expect_error(d, 7, VM_ERR_HOLE);
	assert_string_equal(dump_vmcoreinfo(d), vmci_text);
	dump_close(d);
	fx_unlink(path);
	free(f.p);
	free(b.p);
	free(notes.p);
}

static void test_bad_headers(void **state)
{
	(void)state;
	static const struct fx_page pages[] = { { 1, FX_RAW } };
	struct fx_kdump k = { .version = 6, .max_mapnr = 64, .pages = pages, .npages = 1 };
	struct {
		size_t off;
		uint32_t val;
		enum vm_errcode code;
	} cases[] = {
		{ 428, 4095, VM_ERR_FORMAT },      /* block size not a power of two */
		{ 428, 1u << 30, VM_ERR_FORMAT },  /* block size absurd */
		{ 436, 0, VM_ERR_FORMAT },         /* no bitmap */
		{ 436, 1000000, VM_ERR_FORMAT },   /* bitmaps past EOF */
		{ 432, 0, VM_ERR_FORMAT },         /* v6 without sub header */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fx_buf b = fx_kdump_build(&k);
		fx_put32(&b, cases[i].off, cases[i].val);
		char what[32];
		snprintf(what, sizeof(what), "case %zu", i);
		fx_expect_open_error(&b, cases[i].code, what);
	}
	/* Truncated inside the header. */
	struct fx_buf b = fx_kdump_build(&k);
	b.len = 300;
	fx_expect_open_error(&b, VM_ERR_FORMAT, "truncated inside the header");
}

static void test_cache_bound(void **state)
{
	(void)state;
	/* A cache of 2 pages still reads many pages correctly, in any order. */
	struct fx_page pages[40];
	for (int i = 0; i < 40; i++)
		pages[i] = (struct fx_page){ (uint64_t)i, (enum fx_kind)(FX_ZLIB + i % 4) };
	struct fx_kdump k = { .version = 6, .max_mapnr = 64, .pages = pages, .npages = 40 };
	struct fx_buf b = fx_kdump_build(&k);
	char *path = fx_save(&b);
	const char *p = path;
	struct dump_options o = { .cache_pages = 2 };
	struct dump *d = NULL;
	assert_null(dump_open(&p, 1, &o, &d));
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 40; i++)
			fx_expect_page(d, (uint64_t)((i * 7) % 40));
	dump_close(d);
	fx_unlink(path);
	free(b.p);
}

static void flat_record(struct fx_buf *b, int64_t off, int64_t size, char fill)
{
	uint64_t h[2] = { htobe64((uint64_t)off), htobe64((uint64_t)size) };
	fx_append(b, h, 16);
	for (int64_t i = 0; fill && i < size; i++)
		fx_append(b, &fill, 1);
}

static struct fx_buf flat_header(uint64_t version)
{
	struct fx_buf b = { 0 };
	fx_put(&b, 0, "makedumpfile", 12);
	uint64_t one = htobe64(1), v = htobe64(version);
	fx_put(&b, 16, &one, 8);
	fx_put(&b, 24, &v, 8);
	b.len = FLAT_HEADER_SIZE;
	fx_reserve(&b, b.len);
	return b;
}

static void test_flat_records(void **state)
{
	(void)state;
	struct fx_buf b = flat_header(1);
	flat_record(&b, 100, 100, 'A');
	flat_record(&b, 150, 150, 'B'); /* overlaps A: later wins */
	flat_record(&b, 400, 100, 'C'); /* gap 300..400 */
	flat_record(&b, 0, 50, 'D');    /* out of order; gap 50..100 */
	flat_record(&b, 120, 10, 'E');  /* inside A, written last */
	flat_record(&b, -1, -1, 0);
	char *path = fx_save(&b);
	struct dump_source src;
	struct vm_error *err = source_open(path, &src);
	if (err)
		fail_msg("%s", err->message);
	assert_non_null(src.flat);
	assert_int_equal(src.size, 500);
	char got[500], want[500];
	memset(want, 0, sizeof(want));
	memset(want, 'D', 50);
	memset(want + 100, 'A', 50);
	memset(want + 120, 'E', 10);
	memset(want + 150, 'B', 150);
	memset(want + 400, 'C', 100);
	assert_null(source_read(&src, 0, got, 500));
	assert_memory_equal(got, want, 500);
	/* Reads starting anywhere, crossing records and gaps. */
	for (uint64_t off = 0; off < 500; off += 37) {
		assert_null(source_read(&src, off, got, 500 - off));
		assert_memory_equal(got, want + off, 500 - off);
	}
	err = source_read(&src, 450, got, 51);
	assert_non_null(err);
	vm_error_destroy(err);
	source_close(&src);
	fx_unlink(path);
	free(b.p);

	struct {
		int64_t off, size;
		int version, end_marker;
		enum vm_errcode code;
	} bad[] = {
		{ 0, 10, 1, 0, VM_ERR_FORMAT },       /* no end marker */
		{ -5, 10, 1, 1, VM_ERR_FORMAT },      /* negative offset */
		{ 0, 0, 1, 1, VM_ERR_FORMAT },        /* empty record */
		{ 0, 1 << 20, 1, 1, VM_ERR_FORMAT },  /* record past EOF */
		{ 0, 10, 2, 1, VM_ERR_UNSUPPORTED },  /* unknown version */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct fx_buf c = flat_header((uint64_t)bad[i].version);
		flat_record(&c, bad[i].off, bad[i].size, bad[i].size < 100 ? 'x' : 0);
		if (bad[i].end_marker)
			flat_record(&c, -1, -1, 0);
		path = fx_save(&c);
		err = source_open(path, &src);
		assert_non_null(err);
		if (err->code != bad[i].code)
			fail_msg("case %zu: %s", i, err->message);
		assert_non_null(strstr(err->message, path));
		vm_error_destroy(err);
		source_close(&src);
		fx_unlink(path);
		free(c.p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_versions),
		cmocka_unit_test(test_page_classes),
		cmocka_unit_test(test_incomplete_and_corrupt),
		cmocka_unit_test(test_split_set),
		cmocka_unit_test(test_single_bitmap),
		cmocka_unit_test(test_flattened),
		cmocka_unit_test(test_flat_records),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_cache_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
