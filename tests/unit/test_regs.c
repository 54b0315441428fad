/* Register notes into gdb's order: the pr_reg permutation, GS bases and QEMU control registers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "regs.h"

static void test_prstatus_permutation(void **state)
{
	(void)state;
	uint64_t pr[27];
	for (int i = 0; i < 27; i++)
		pr[i] = 0x1000 + (uint64_t)i;
	pr[17] = 0x10; /* kernel cs */
	struct x86_regs r;
	regs_from_prstatus(pr, &r);
	assert_int_equal(r.v[REG_RAX], 0x1000 + 10);
	assert_int_equal(r.v[REG_RBX], 0x1000 + 5);
	assert_int_equal(r.v[REG_RSP], 0x1000 + 19);
	assert_int_equal(r.v[REG_RBP], 0x1000 + 4);
	assert_int_equal(r.v[REG_R15], 0x1000 + 0);
	assert_int_equal(r.v[REG_R8], 0x1000 + 9);
	assert_int_equal(r.v[REG_RIP], 0x1000 + 16);
	assert_int_equal(r.v[REG_EFLAGS], 0x1000 + 18);
	assert_int_equal(r.v[REG_SS], 0x1000 + 20);
	assert_int_equal(r.v[REG_FS_BASE], 0x1000 + 21);
	assert_int_equal(r.v[REG_ORIG_RAX], 0x1000 + 15);
	/* pr_reg[22] is the inactive GS base: k_gs_base in kernel mode, never gs_base. */
	assert_true(regs_has(&r, REG_K_GS_BASE));
	assert_int_equal(r.v[REG_K_GS_BASE], 0x1000 + 22);
	assert_false(regs_has(&r, REG_GS_BASE));
	/* No control registers in a kernel note: unavailable, not zero. */
	assert_false(regs_has(&r, REG_CR3));
	assert_false(regs_has(&r, REG_EFER));

	pr[17] = 0x33; /* user cs: the saved inactive base is not MSR_KERNEL_GS_BASE of that context */
	regs_from_prstatus(pr, &r);
	assert_false(regs_has(&r, REG_K_GS_BASE));
}

static void test_qemu_note(void **state)
{
	(void)state;
	struct dump_qemu_cpu q;
	memset(&q, 0, sizeof(q));
	for (int i = 0; i < 16; i++)
		q.gpr[i] = 0x100 + (uint64_t)i;
	q.rip = 0xffffffff81000000ull;
	q.seg[0].selector = 0x10; /* cs */
	q.seg[3].base = 0x7f0000001000ull; /* fs */
	q.seg[4].base = 0xff11000012340000ull; /* gs */
	q.seg[5].selector = 0x18; /* ss */
	q.cr[3] = 0x1234000;
	q.cr[4] = 1u << 12;
	struct x86_regs r;
	regs_from_qemu(&q, &r);
	assert_int_equal(r.v[REG_RSP], 0x100 + 6);
	assert_int_equal(r.v[REG_RBP], 0x100 + 7);
	assert_int_equal(r.v[REG_R15], 0x100 + 15);
	assert_int_equal(r.v[REG_CS], 0x10);
	assert_int_equal(r.v[REG_SS], 0x18);
	assert_int_equal(r.v[REG_FS_BASE], 0x7f0000001000ull);
	assert_int_equal(r.v[REG_GS_BASE], 0xff11000012340000ull);
	assert_int_equal(r.v[REG_CR3], 0x1234000);
	assert_int_equal(r.v[REG_CR4], 1u << 12);
	assert_false(regs_has(&r, REG_K_GS_BASE)); /* older QEMU: no kernel_gs_base */
	assert_false(regs_has(&r, REG_EFER));
	q.has_kernel_gs_base = true;
	q.kernel_gs_base = 0x5555;
	regs_from_qemu(&q, &r);
	assert_int_equal(r.v[REG_K_GS_BASE], 0x5555);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prstatus_permutation),
		cmocka_unit_test(test_qemu_note),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
