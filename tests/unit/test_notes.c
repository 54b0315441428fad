/* Note blob parsing: PRSTATUS in note order, QEMU 432/440, names with/without NUL, bad sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dump_fixture.h"
#include "notes.h"

static void test_compacted_prstatus(void **state)
{
	(void)state;
	/* Two CPUs' notes (the kernel dropped the others'): index is note order, pid kept. */
	struct fx_buf b = { 0 };
	fx_prstatus(&b, 0, 0x1000);
	fx_prstatus(&b, 4242, 0x2000);
	fx_note(&b, "OTHER", 7, "xyz", 3);
	struct note_set s;
	assert_null(notes_parse(b.p, b.len, "t", 0, &s));
	assert_int_equal(s.ncpus, 2);
	assert_int_equal(s.cpus[0].index, 0);
	assert_int_equal(s.cpus[1].index, 1);
	assert_int_equal(s.cpus[0].pr_pid, 0);
	assert_int_equal(s.cpus[1].pr_pid, 4242);
	assert_int_equal(s.cpus[1].pr_reg[0], 0x2000);
	assert_int_equal(s.cpus[1].pr_reg[26], 0x2000 + 26);
	assert_false(s.cpus[0].has_qemu);
	assert_null(s.vmcoreinfo);
	notes_free(&s);
	free(b.p);
}

static void test_qemu_sizes(void **state)
{
	(void)state;
	struct fx_buf b = { 0 };
	fx_prstatus(&b, 1, 0x10);
	fx_qemu_note(&b, 432, 0x5000);
	fx_qemu_note(&b, 440, 0x6000); /* more QEMU notes than PRSTATUS: a second CPU entry */
	struct note_set s;
	assert_null(notes_parse(b.p, b.len, "t", 0, &s));
	assert_int_equal(s.ncpus, 2);
	assert_true(s.cpus[0].has_prstatus);
	assert_true(s.cpus[0].has_qemu);
	assert_false(s.cpus[0].qemu.has_kernel_gs_base);
	assert_int_equal(s.cpus[0].qemu.gpr[0], 0x5000);
	assert_int_equal(s.cpus[0].qemu.rip, 0);
	assert_int_equal(s.cpus[0].qemu.cr[4], 0x5000 + 104);
	assert_false(s.cpus[1].has_prstatus);
	assert_true(s.cpus[1].qemu.has_kernel_gs_base);
	assert_int_equal(s.cpus[1].qemu.kernel_gs_base, 0x6000 + 0x4b00);
	assert_int_equal(s.cpus[1].qemu.seg[4].base, 0x6000 + 0x6500);
	notes_free(&s);
	free(b.p);
}

static void test_vmcoreinfo_and_end(void **state)
{
	(void)state;
	struct fx_buf b = { 0 };
	fx_vmcoreinfo_note(&b, "OSRELEASE=x\n");
	size_t desc_off = 12 + 12; /* header + "VMCOREINFO\0" padded to 12 */
	uint32_t zero[3] = { 0, 0, 0 };
	fx_append(&b, zero, sizeof(zero)); /* the kernel's final note ends the blob */
	fx_prstatus(&b, 9, 0);
	struct note_set s;
	assert_null(notes_parse(b.p, b.len, "t", 0, &s));
	assert_string_equal(s.vmcoreinfo, "OSRELEASE=x\n");
	assert_int_equal(s.vmcoreinfo_desc_off, desc_off);
	assert_int_equal(s.ncpus, 0);
	notes_free(&s);
	free(b.p);

	/* Name counted without its NUL (accepted, as libkdumpfile does). */
	uint8_t raw[12 + 4 + 4] = { 0 };
	uint32_t hdr[3] = { 4, 4, 0 };
	memcpy(raw, hdr, 12);
	memcpy(raw + 12, "QEMU", 4);
	struct fx_buf q = { 0 };
	fx_append(&q, raw, sizeof(raw));
	struct vm_error *err = notes_parse(q.p, q.len, "t", 0x100, &s);
	assert_non_null(err); /* it is a QEMU note, and 4 bytes is too short for CPU state */
	assert_int_equal(err->code, VM_ERR_FORMAT);
	assert_non_null(strstr(err->message, "0x100"));
	vm_error_destroy(err);
	free(q.p);
}

static void test_bad_sizes(void **state)
{
	(void)state;
	struct fx_buf b = { 0 };
	fx_prstatus(&b, 1, 0);
	struct note_set s;
	/* Descriptor runs past the blob. */
	struct vm_error *err = notes_parse(b.p, b.len - 8, "t", 0, &s);
	assert_non_null(err);
	assert_int_equal(err->code, VM_ERR_FORMAT);
	vm_error_destroy(err);
	/* Absurd name size. */
	uint32_t big = 0xfffffff0u;
	memcpy(b.p, &big, 4);
	err = notes_parse(b.p, b.len, "t", 0, &s);
	assert_non_null(err);
	vm_error_destroy(err);
	free(b.p);
	/* PRSTATUS too short for pr_reg. */
	struct fx_buf c = { 0 };
	uint8_t d[100] = { 0 };
	fx_note(&c, "CORE", 1, d, sizeof(d));
	err = notes_parse(c.p, c.len, "t", 0, &s);
	assert_non_null(err);
	assert_int_equal(err->code, VM_ERR_FORMAT);
	vm_error_destroy(err);
	free(c.p);
	/* A QEMU note whose size field says 440 in a 432-byte descriptor. */
	struct fx_buf q = { 0 };
	fx_qemu_note(&q, 432, 0);
	uint32_t claimed = 440;
	memcpy(q.p + 12 + 8 + 4, &claimed, 4);
	err = notes_parse(q.p, q.len, "t", 0, &s);
	assert_non_null(err);
	vm_error_destroy(err);
	free(q.p);
	/* Trailing bytes shorter than a note header are ignored; empty blob is fine. */
	assert_null(notes_parse((const uint8_t *)"abc", 3, "t", 0, &s));
	assert_int_equal(s.ncpus, 0);
	notes_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compacted_prstatus),
		cmocka_unit_test(test_qemu_sizes),
		cmocka_unit_test(test_vmcoreinfo_and_end),
		cmocka_unit_test(test_bad_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
