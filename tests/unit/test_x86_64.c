/* Page-table walks over fixture tables held in a small fake physical memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "x86_64.h"

#define NPAGES 64

/* Fake physical memory: NPAGES pages at physical 0; beyond that reads fail with VM_ERR_BEYOND. */
struct physmem {
	uint8_t bytes[NPAGES * 4096];
	int next_page;
	int reads;
};

static struct vm_error *read_phys(void *arg, uint64_t pa, void *buf, size_t len)
{
	struct physmem *m = arg;
	m->reads++;
	if (pa + len > sizeof(m->bytes))
		return vm_error_create(VM_ERR_BEYOND, pa, "physical 0x%llx: beyond the end", (unsigned long long)pa);
	memcpy(buf, m->bytes + pa, len);
	return NULL;
}

static uint64_t new_table(struct physmem *m)
{
	assert_true(m->next_page < NPAGES);
	return (uint64_t)m->next_page++ * 4096;
}

static void set_entry(struct physmem *m, uint64_t table, unsigned index, uint64_t val)
{
	memcpy(m->bytes + table + index * 8, &val, 8);
}

static struct physmem *mem_new(void)
{
	struct physmem *m = calloc(1, sizeof(*m));
	/* Page 0 stays unused so a 0 entry never looks like a table; the first table (the root) is
	 * 8 KiB aligned like init_top_pgt, whose bit 12 selects the PTI user half. */
	m->next_page = 2;
	return m;
}

#define P 0x1ull
#define RW 0x2ull
#define PSE 0x80ull
#define NX (1ull << 63)

/* 4-level: va 0xffffc90000abc123 -> 4K page at pa 0x7654000. */
static void test_4level_4k(void **state)
{
	(void)state;
	struct physmem *m = mem_new();
	uint64_t va = 0xffffc90000abc123ull;
	uint64_t pgd = new_table(m), pud = new_table(m), pmd = new_table(m), pte = new_table(m);
	set_entry(m, pgd, (va >> 39) & 511, pud | P | RW);
	set_entry(m, pud, (va >> 30) & 511, pmd | P | RW);
	set_entry(m, pmd, (va >> 21) & 511, pte | P | RW);
	set_entry(m, pte, (va >> 12) & 511, 0x7654000ull | P | RW | NX | 0x80 /* PAT on a PTE */);
	struct x86_paging pg = { .la57 = false };
	uint64_t pa, size;
	struct kernel_walk w;
	struct vm_error *err = x86_walk(&pg, pgd, va, read_phys, m, &pa, &size, &w);
	assert_null(err);
	assert_int_equal(pa, 0x7654123);
	assert_int_equal(size, 4096);
	assert_int_equal(w.nlevels, 4);
	assert_string_equal(w.level[0].name, "PGD");
	assert_string_equal(w.level[3].name, "PTE");
	assert_int_equal(w.level[2].table_pa, pmd);
	assert_int_equal(m->reads, 4);
	free(m);
}

/* 5-level: the root holds level-5 entries indexed by bits 48..56. */
static void test_5level_4k(void **state)
{
	(void)state;
	struct physmem *m = mem_new();
	uint64_t va = 0xff11000012345678ull;
	uint64_t pgd = new_table(m), p4d = new_table(m), pud = new_table(m), pmd = new_table(m), pte = new_table(m);
	set_entry(m, pgd, (va >> 48) & 511, p4d | P);
	set_entry(m, p4d, (va >> 39) & 511, pud | P);
	set_entry(m, pud, (va >> 30) & 511, pmd | P);
	set_entry(m, pmd, (va >> 21) & 511, pte | P);
	set_entry(m, pte, (va >> 12) & 511, 0xabcd000ull | P);
	struct x86_paging pg = { .la57 = true };
	uint64_t pa, size;
	struct kernel_walk w;
	assert_null(x86_walk(&pg, pgd, va, read_phys, m, &pa, &size, &w));
	assert_int_equal(pa, 0xabcd678);
	assert_int_equal(w.nlevels, 5);
	assert_string_equal(w.level[1].name, "P4D");

	/* The same tables read as 4-level give a different (unmapped) result. */
	struct x86_paging pg4 = { .la57 = false };
	struct vm_error *err = x86_walk(&pg4, pgd, va, read_phys, m, &pa, &size, NULL);
	assert_non_null(err);
	assert_int_equal(err->code, VM_ERR_NOT_MAPPED);
	vm_error_destroy(err);
	free(m);
}

/* 2M and 1G leaves; bit 12 (PAT) in a large leaf is not an address bit. */
static void test_large_pages_pat(void **state)
{
	(void)state;
	struct physmem *m = mem_new();
	uint64_t va2m = 0xffff888040123456ull, va1g = 0xffff8880c1234567ull;
	uint64_t pgd = new_table(m), pud = new_table(m), pmd = new_table(m);
	set_entry(m, pgd, (va2m >> 39) & 511, pud | P);
	set_entry(m, pud, (va2m >> 30) & 511, pmd | P);
	set_entry(m, pmd, (va2m >> 21) & 511, 0x80000000ull | P | PSE | (1ull << 12));
	set_entry(m, pud, (va1g >> 30) & 511, 0x140000000ull | P | PSE | (1ull << 12));
	struct x86_paging pg = { 0 };
	uint64_t pa, size;
	assert_null(x86_walk(&pg, pgd, va2m, read_phys, m, &pa, &size, NULL));
	assert_int_equal(size, 2ull << 20);
	assert_int_equal(pa, 0x80000000ull + (va2m & 0x1fffff));
	assert_null(x86_walk(&pg, pgd, va1g, read_phys, m, &pa, &size, NULL));
	assert_int_equal(size, 1ull << 30);
	assert_int_equal(pa, 0x140000000ull + (va1g & 0x3fffffff));
	free(m);
}

/* The SME C-bit is cleared from CR3 and from every entry. */
static void test_sme_mask(void **state)
{
	(void)state;
	struct physmem *m = mem_new();
	uint64_t c = 1ull << 47, va = 0xffffffff81000000ull;
	uint64_t pgd = new_table(m), pud = new_table(m), pmd = new_table(m);
	set_entry(m, pgd, (va >> 39) & 511, pud | c | P);
	set_entry(m, pud, (va >> 30) & 511, pmd | c | P);
	set_entry(m, pmd, (va >> 21) & 511, 0x1000000ull | c | P | PSE);
	struct x86_paging pg = { .sme_mask = c };
	uint64_t pa, size;
	uint64_t root = x86_cr3_to_root(pgd | c, c, true);
	assert_int_equal(root, pgd);
	assert_null(x86_walk(&pg, root, va, read_phys, m, &pa, &size, NULL));
	assert_int_equal(pa, 0x1000000);
	/* Without the mask the C-bit lands in the table address: the read goes beyond memory. */
	struct x86_paging nomask = { 0 };
	struct vm_error *err = x86_walk(&nomask, pgd, va, read_phys, m, &pa, &size, NULL);
	assert_non_null(err);
	assert_int_equal(err->code, VM_ERR_BEYOND);
	assert_non_null(strstr(err->message, "reading PUD entry"));
	vm_error_destroy(err);
	free(m);
}

/* CR3 with PCID (low 12 bits), PTI user bit (12) and LAM/noflush bits. */
static void test_cr3_bits(void **state)
{
	(void)state;
	assert_int_equal(x86_cr3_to_root(0x10a000ull | 0x5, 0, true), 0x10a000);
	assert_int_equal(x86_cr3_to_root(0x10b000ull | 0x805, 0, true), 0x10a000);
	assert_int_equal(x86_cr3_to_root(0x10b000ull | (1ull << 63) | (1ull << 61) | (1ull << 62), 0, true), 0x10a000);
	/* Without PTI bit 12 is an address bit. */
	assert_int_equal(x86_cr3_to_root(0x10b000ull | 0x805, 0, false), 0x10b000);
}

/* A not-present entry at each level names that level, the entry and its address. */
static void test_not_present_each_level(void **state)
{
	(void)state;
	static const char *names[] = { "PGD", "P4D", "PUD", "PMD", "PTE" };
	for (int stop = 0; stop < 5; stop++) {
		struct physmem *m = mem_new();
		uint64_t va = 0xffd4000000201000ull;
		uint64_t t[5];
		for (int i = 0; i < 5; i++)
			t[i] = new_table(m);
		int shifts[5] = { 48, 39, 30, 21, 12 };
		for (int i = 0; i < 5; i++) {
			uint64_t next = i < 4 ? t[i + 1] : 0x3000;
			if (i != stop)
				set_entry(m, t[i], (va >> shifts[i]) & 511, next | P);
			else
				set_entry(m, t[i], (va >> shifts[i]) & 511, next); /* present bit clear */
		}
		struct x86_paging pg = { .la57 = true };
		uint64_t pa, size;
		struct kernel_walk w;
		struct vm_error *err = x86_walk(&pg, t[0], va, read_phys, m, &pa, &size, &w);
		assert_non_null(err);
		assert_int_equal(err->code, VM_ERR_NOT_MAPPED);
		assert_int_equal(err->addr, va);
		char want[160];
		uint64_t next = stop < 4 ? t[stop + 1] : 0x3000;
		snprintf(want, sizeof(want), "0x%016llx: not mapped: %s entry 0x%llx at 0x%llx not present",
			 (unsigned long long)va, names[stop], (unsigned long long)next,
			 (unsigned long long)(t[stop] + ((va >> shifts[stop]) & 511) * 8));
		assert_string_equal(err->message, want);
		assert_int_equal(w.nlevels, stop + 1);
		assert_false(w.mapped);
		vm_error_destroy(err);
		free(m);
	}
}

static void test_non_canonical(void **state)
{
	(void)state;
	struct physmem *m = mem_new();
	struct x86_paging pg = { 0 };
	uint64_t pa, size;
	struct vm_error *err = x86_walk(&pg, new_table(m), 0x0000800000000000ull, read_phys, m, &pa, &size, NULL);
	assert_non_null(err);
	assert_int_equal(err->code, VM_ERR_NOT_MAPPED);
	assert_non_null(strstr(err->message, "not canonical"));
	assert_int_equal(m->reads, 0);
	vm_error_destroy(err);
	/* 0xff11... is canonical only with 5 levels. */
	assert_false(x86_canonical(&pg, 0xff11000000000000ull));
	struct x86_paging pg5 = { .la57 = true };
	assert_true(x86_canonical(&pg5, 0xff11000000000000ull));
	assert_true(x86_canonical(&pg, 0x00007fffffffffffull));
	free(m);
}

/* A table that points at itself at every level still ends after one read per level. */
static void test_self_referencing_table(void **state)
{
	(void)state;
	struct physmem *m = mem_new();
	uint64_t t = new_table(m);
	for (unsigned i = 0; i < 512; i++)
		set_entry(m, t, i, t | P);
	struct x86_paging pg = { .la57 = true };
	uint64_t pa, size;
	assert_null(x86_walk(&pg, t, 0xff11000000005008ull, read_phys, m, &pa, &size, NULL));
	assert_int_equal(pa, t + 8);
	assert_int_equal(m->reads, 5);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_4level_4k),
		cmocka_unit_test(test_5level_4k),
		cmocka_unit_test(test_large_pages_pat),
		cmocka_unit_test(test_sme_mask),
		cmocka_unit_test(test_cr3_bits),
		cmocka_unit_test(test_not_present_each_level),
		cmocka_unit_test(test_non_canonical),
		cmocka_unit_test(test_self_referencing_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
