/* dump_convert: every compression round-trips through our reader; header, notes, zero page. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "convert.h"
#include "dump.h"
#include "dump_fixture.h"

static const char vmci[] = "OSRELEASE=6.1.0-conv\nNUMBER(phys_base)=-1040187392\nCRASHTIME=1700000000\n";

/* ELF source: data pages 0-5 (2 and 4 all zeros after patching), excluded 6-9, hole 10-15, data 16-17. */
static struct fx_buf source(struct fx_buf *notes)
{
	fx_prstatus(notes, 1, 0x40);
	fx_vmcoreinfo_note(notes, vmci);
	struct fx_load loads[] = { { 0, 0, 6 * FX_PS, 10 * FX_PS }, { 16 * FX_PS, 0, 2 * FX_PS, 2 * FX_PS } };
	struct fx_buf b = fx_elf_build(notes, loads, 2, 0, 0);
	/* Data of load 0 starts after the ELF header, 3 phdrs and the notes. */
	size_t data = 64 + 3 * 56 + notes->len;
	memset(b.p + data + 2 * FX_PS, 0, FX_PS);
	memset(b.p + data + 4 * FX_PS, 0, FX_PS);
	return b;
}

static void compare(struct dump *a, struct dump *b)
{
	assert_int_equal(dump_describe(a)->max_pfn, dump_describe(b)->max_pfn);
	uint8_t pa[FX_PS], pb[FX_PS];
	for (uint64_t pfn = 0; pfn < dump_describe(a)->max_pfn; pfn++) {
		enum vm_errcode sa = dump_page_state(a, pfn * FX_PS), sb = dump_page_state(b, pfn * FX_PS);
		if (sa != sb)
			fail_msg("pfn %llu: state %d vs %d", (unsigned long long)pfn, sa, sb);
		struct vm_error *ea = dump_read_phys(a, pfn * FX_PS, pa, FX_PS, false);
		struct vm_error *eb = dump_read_phys(b, pfn * FX_PS, pb, FX_PS, false);
		assert_int_equal(ea ? ea->code : 0, eb ? eb->code : 0);
		if (!ea)
			assert_memory_equal(pa, pb, FX_PS);
		vm_error_destroy(ea);
		vm_error_destroy(eb);
	}
}

static void test_round_trip(void **state)
{
	(void)state;
	struct fx_buf notes = { 0 };
	struct fx_buf src = source(&notes);
	char *in_path = fx_save(&src);
	const char *ip = in_path;
	struct dump *in;
	assert_null(dump_open(&ip, 1, NULL, &in));
	for (int c = CONVERT_NONE; c <= CONVERT_ZSTD; c++) {
		for (int level = 0; level <= 1; level++) {
			char out_path[] = "/tmp/memmodel-convert-XXXXXX";
			close(mkstemp(out_path));
			struct convert_options o = { .compression = (enum convert_compression)c, .dump_level = level };
			struct vm_error *err = dump_convert(in, &o, out_path);
			if (err)
				fail_msg("convert %d: %s", c, err->message);
			const char *op = out_path;
			struct dump *out;
			assert_null(dump_open(&op, 1, NULL, &out));
			const struct dump_desc *d = dump_describe(out);
			assert_string_equal(d->format, "kdump");
			assert_int_equal(d->header_version, 6);
			assert_int_equal(d->dump_level, level);
			assert_int_equal(d->phys_base, (uint64_t)-1040187392);
			assert_string_equal(d->utsname_release, "6.1.0-conv");
			assert_string_equal(dump_vmcoreinfo(out), vmci);
			const struct dump_cpu_note *cpus;
			assert_int_equal(dump_cpu_notes(out, &cpus), 1);
			assert_int_equal(cpus[0].pr_reg[16], 0x40 + 16);
			compare(in, out);
			/* Descriptor offsets: the two zero pages share the zero page at level 1 only. */
			FILE *f = fopen(out_path, "rb");
			uint8_t hdr[464];
			assert_int_equal(fread(hdr, 1, sizeof(hdr), f), sizeof(hdr));
			uint32_t sub, bmb;
			memcpy(&sub, hdr + 432, 4);
			memcpy(&bmb, hdr + 436, 4);
			assert_int_equal(bmb % 2, 0);
			uint64_t desc_off = (uint64_t)(1 + sub + bmb) * FX_PS, offs[8];
			fseek(f, (long)desc_off, SEEK_SET);
			for (int i = 0; i < 8; i++) {
				uint8_t pd[24];
				assert_int_equal(fread(pd, 1, 24, f), 24);
				memcpy(&offs[i], pd, 8);
			}
			fclose(f);
			/* descriptors: pfns 0,1,2,3,4,5,16,17 */
			if (level == 1)
				assert_int_equal(offs[2], offs[4]);
			else
				assert_int_not_equal(offs[2], offs[4]);
			assert_int_not_equal(offs[0], offs[1]);
			dump_close(out);
			unlink(out_path);
		}
	}
	dump_close(in);
	fx_unlink(in_path);
	free(src.p);
	free(notes.p);
}

static void test_refusals(void **state)
{
	(void)state;
	struct fx_buf notes = { 0 };
	struct fx_buf src = source(&notes);
	char *in_path = fx_save(&src);
	const char *ip = in_path;
	struct dump *in;
	assert_null(dump_open(&ip, 1, NULL, &in));
	struct convert_options o = { .compression = CONVERT_ZLIB, .dump_level = 31 };
	struct vm_error *err = dump_convert(in, &o, "/tmp/memmodel-never-written");
	assert_non_null(err);
	assert_int_equal(err->code, VM_ERR_UNSUPPORTED);
	vm_error_destroy(err);
	assert_int_equal(access("/tmp/memmodel-never-written", F_OK), -1);
	o.dump_level = 0;
	err = dump_convert(in, &o, in_path);
	assert_non_null(err);
	assert_int_equal(err->code, VM_ERR_INVALID);
	vm_error_destroy(err);
	/* The input is untouched. */
	FILE *f = fopen(in_path, "rb");
	uint8_t *again = malloc(src.len);
	assert_int_equal(fread(again, 1, src.len, f), src.len);
	fclose(f);
	assert_memory_equal(again, src.p, src.len);
	free(again);
	enum convert_compression c;
	assert_null(convert_compression_parse("snappy", &c));
	assert_int_equal(c, CONVERT_SNAPPY);
	err = convert_compression_parse("bzip2", &c);
	assert_int_equal(err->code, VM_ERR_INVALID);
	vm_error_destroy(err);
	dump_close(in);
	fx_unlink(in_path);
	free(src.p);
	free(notes.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
