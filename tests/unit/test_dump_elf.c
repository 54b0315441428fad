/* ELF vmcore reader on fixtures: excluded ranges, holes, overlaps, PN_XNUM, truncation, notes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dump.h"
#include "dump_fixture.h"

static struct dump *open_buf(const struct fx_buf *b, char **path)
{
	*path = fx_save(b);
	const char *p = *path;
	struct dump *d = NULL;
	struct vm_error *err = dump_open(&p, 1, NULL, &d);
	if (err)
		fail_msg("open: %s", err->message);
	return d;
}

static void expect_code(struct dump *d, uint64_t pa, size_t len, enum vm_errcode code)
{
	uint8_t buf[2 * FX_PS];
	struct vm_error *err = dump_read_phys(d, pa, buf, len, false);
	if (!err)
		fail_msg("read at %#llx succeeded, want %s", (unsigned long long)pa, vm_errcode_name(code));
	if (err->code != code)
		fail_msg("read at %#llx: %s, want %s", (unsigned long long)pa, err->message, vm_errcode_name(code));
	vm_error_destroy(err);
}

static void test_loads_and_classes(void **state)
{
	(void)state;
	/* ktext-style segment overlapping the direct-map one; an excluded tail; a hole; an
	 * unaligned e820-style end (0x9fc00) whose page rest reads as zeros. */
	struct fx_load loads[] = {
		{ 0x1000, 0xffff888000001000ull, 0x9ec00, 0x9ec00 },
		{ 0x100000, 0xffff888000100000ull, 4 * FX_PS, 16 * FX_PS },
		{ 0x101000, 0xffffffff81000000ull, 2 * FX_PS, 2 * FX_PS },
		{ 0x200000, 0xffff888000200000ull, 2 * FX_PS, 2 * FX_PS },
	};
	struct fx_buf b = fx_elf_build(NULL, loads, 4, 0, 0);
	char *path;
	struct dump *d = open_buf(&b, &path);
	const struct dump_desc *desc = dump_describe(d);
	assert_string_equal(desc->format, "elf");
	assert_int_equal(desc->max_pfn, 0x202);
	const struct dump_segment *segs;
	assert_int_equal(dump_segments(d, &segs), 4);
	assert_int_equal(segs[2].vaddr, 0xffffffff81000000ull);
	fx_expect_page(d, 1);
	fx_expect_page(d, 0x101);
	fx_expect_page(d, 0x103);
	fx_expect_page(d, 0x201);
	expect_code(d, 0, 16, VM_ERR_HOLE);
	expect_code(d, 0x104000, 16, VM_ERR_EXCLUDED);
	expect_code(d, 0x10f000 + 8, 16, VM_ERR_EXCLUDED);
	expect_code(d, 0x110000, 16, VM_ERR_HOLE);
	expect_code(d, 0x202000, 16, VM_ERR_BEYOND);
	expect_code(d, 0x201ff8, 16, VM_ERR_BEYOND);
	assert_int_equal(dump_page_state(d, 0x104000), VM_ERR_EXCLUDED);
	assert_int_equal(dump_page_state(d, 0x110000), VM_ERR_HOLE);
	assert_int_equal(dump_page_state(d, 0x300000), VM_ERR_BEYOND);
	assert_int_equal(dump_page_state(d, 0x103000), 0);
	/* Page 0x9f000: 0xc00 bytes of data, then zeros up to the page end. */
	assert_int_equal(dump_page_state(d, 0x9f000), 0);
	uint8_t got[FX_PS], want[FX_PS];
	fx_content(0x9f, want);
	memset(want + 0xc00, 0, FX_PS - 0xc00);
	assert_null(dump_read_phys(d, 0x9f000, got, FX_PS, false));
	assert_memory_equal(got, want, FX_PS);
	expect_code(d, 0xa0000, 16, VM_ERR_HOLE);
	/* zero_excluded fills the excluded tail but not the hole after it. */
	uint8_t two[2 * FX_PS], zero[FX_PS] = { 0 };
	assert_null(dump_read_phys(d, 0x103000, two, 2 * FX_PS, true));
	fx_content(0x103, want);
	assert_memory_equal(two, want, FX_PS);
	assert_memory_equal(two + FX_PS, zero, FX_PS);
	struct vm_error *err = dump_read_phys(d, 0x10f000, two, 2 * FX_PS, true);
	assert_non_null(err);
	assert_int_equal(err->code, VM_ERR_HOLE);
	assert_int_equal(err->addr, 0x110000);
	assert_non_null(strstr(err->message, path));
	vm_error_destroy(err);
	dump_close(d);
	fx_unlink(path);
	free(b.p);
}

static void test_pn_xnum(void **state)
{
	(void)state;
	struct fx_load loads[] = { { 0, 0, 2 * FX_PS, 2 * FX_PS } };
	struct fx_buf notes = { 0 };
	fx_prstatus(&notes, 1, 0x10);
	struct fx_buf b = fx_elf_build(&notes, loads, 1, 70000, 0);
	char *path;
	struct dump *d = open_buf(&b, &path);
	const struct dump_segment *segs;
	assert_int_equal(dump_segments(d, &segs), 70001);
	fx_expect_page(d, 1);
	expect_code(d, (uint64_t)(2 + 69999) * FX_PS, 8, VM_ERR_EXCLUDED);
	expect_code(d, (uint64_t)(2 + 70000) * FX_PS, 8, VM_ERR_BEYOND);
	const struct dump_cpu_note *cpus;
	assert_int_equal(dump_cpu_notes(d, &cpus), 1);
	dump_close(d);
	fx_unlink(path);
	free(b.p);
	free(notes.p);
}

static void test_truncated_and_incomplete(void **state)
{
	(void)state;
	struct fx_load loads[] = { { 0, 0, 4 * FX_PS, 4 * FX_PS } };
	struct fx_buf b = fx_elf_build(NULL, loads, 1, 0, 1 /* DUMP_ELF_INCOMPLETE */);
	b.len -= 2 * FX_PS + 100;
	char *path;
	struct dump *d = open_buf(&b, &path);
	assert_true(dump_describe(d)->incomplete);
	fx_expect_page(d, 0);
	expect_code(d, 1 * FX_PS, FX_PS, VM_ERR_INCOMPLETE);
	expect_code(d, 3 * FX_PS, 8, VM_ERR_INCOMPLETE);
	assert_int_equal(dump_page_state(d, 3 * FX_PS), VM_ERR_INCOMPLETE);
	dump_close(d);
	fx_unlink(path);
	free(b.p);
}

static void test_bad_elf(void **state)
{
	(void)state;
	struct fx_load loads[] = { { 0, 0, FX_PS, FX_PS } };
	struct {
		size_t off;
		uint16_t val;
		enum vm_errcode code;
	} cases[] = {
		{ 18, 3, VM_ERR_UNSUPPORTED },   /* EM_386 */
		{ 16, 2, VM_ERR_FORMAT },        /* ET_EXEC */
		{ 54, 32, VM_ERR_FORMAT },       /* e_phentsize */
		{ 56, 0xfff0, VM_ERR_FORMAT },   /* phnum past EOF */
		{ 56, 0xffff, VM_ERR_FORMAT },   /* PN_XNUM without a section header */
		{ 56, 0, VM_ERR_FORMAT },        /* no program headers */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fx_buf b = fx_elf_build(NULL, loads, 1, 0, 0);
		fx_put(&b, cases[i].off, &cases[i].val, 2);
		char what[32];
		snprintf(what, sizeof(what), "case %zu", i);
		fx_expect_open_error(&b, cases[i].code, what);
	}
	/* filesz > memsz in a PT_LOAD. */
	struct fx_load bad[] = { { 0, 0, FX_PS, FX_PS / 2 } };
	struct fx_buf b = fx_elf_build(NULL, bad, 1, 0, 0);
	fx_expect_open_error(&b, VM_ERR_FORMAT, "filesz > memsz");
}

static void test_qemu_notes_in_elf(void **state)
{
	(void)state;
	struct fx_buf notes = { 0 };
	fx_prstatus(&notes, 1, 0x100);
	fx_prstatus(&notes, 2, 0x200);
	fx_qemu_note(&notes, 440, 0x1000);
	fx_qemu_note(&notes, 432, 0x2000);
	fx_vmcoreinfo_note(&notes, "OSRELEASE=6.1.0-qemu\n");
	struct fx_load loads[] = { { 0, 0, FX_PS, FX_PS } };
	struct fx_buf b = fx_elf_build(&notes, loads, 1, 0, 0);
	char *path;
	struct dump *d = open_buf(&b, &path);
	const struct dump_cpu_note *c;
	assert_int_equal(dump_cpu_notes(d, &c), 2);
	assert_true(c[0].has_prstatus && c[0].has_qemu);
	assert_int_equal(c[1].pr_pid, 2);
	assert_int_equal(c[1].pr_reg[16], 0x200 + 16);
	assert_true(c[0].qemu.has_kernel_gs_base);
	assert_int_equal(c[0].qemu.kernel_gs_base, 0x1000 + 0x4b00);
	assert_false(c[1].qemu.has_kernel_gs_base);
	assert_int_equal(c[1].qemu.cr[3], 0x2000 + 103);
	assert_int_equal(c[1].qemu.seg[4].base, 0x2000 + 0x6500);
	assert_string_equal(dump_describe(d)->utsname_release, "6.1.0-qemu");
	size_t len;
	assert_non_null(dump_notes_raw(d, &len));
	assert_int_equal(len, notes.len);
	dump_close(d);
	fx_unlink(path);
	free(b.p);
	free(notes.p);
}

static void test_flattened_elf(void **state)
{
	(void)state;
	/* makedumpfile -E -F: the ELF header is not the first record; reads go through the index. */
	struct fx_buf notes = { 0 };
	fx_prstatus(&notes, 3, 0x300);
	struct fx_load loads[] = { { 0, 0, 3 * FX_PS, 5 * FX_PS } };
	struct fx_buf b = fx_elf_build(&notes, loads, 1, 0, 0);
	struct fx_buf f = fx_flatten(&b, 1000);
	char *path;
	struct dump *d = open_buf(&f, &path);
	assert_string_equal(dump_describe(d)->format, "flattened-elf");
	fx_expect_page(d, 0);
	fx_expect_page(d, 2);
	expect_code(d, 3 * FX_PS, 8, VM_ERR_EXCLUDED);
	const struct dump_cpu_note *c;
	assert_int_equal(dump_cpu_notes(d, &c), 1);
	assert_int_equal(c[0].pr_pid, 3);
	dump_close(d);
	fx_unlink(path);
	free(f.p);
	free(b.p);
	free(notes.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loads_and_classes),
		cmocka_unit_test(test_pn_xnum),
		cmocka_unit_test(test_truncated_and_incomplete),
		cmocka_unit_test(test_bad_elf),
		cmocka_unit_test(test_qemu_notes_in_elf),
		cmocka_unit_test(test_flattened_elf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
