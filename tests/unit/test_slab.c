/* SLUB freelist decoding (memmodel/slab.h) over a fixture slab: hardened links, loops, bad
 * pointers, the red-left pad, crash's count and read failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "slab.h"

#define BASE 0xffff888012340000ull
#define OBJ 64u
#define NOBJ 16u
#define RANDOM 0x5a5aa5a5deadbeefull

/* A 1 KiB slab of 64-byte objects (plus an optional red-left pad), links at offset 24. */
struct fixture {
	uint8_t mem[4096];
	struct slab_geometry g;
	int reads;
	uint64_t fail_at; /* reads of this address fail */
};

static struct vm_error *read_fixture(void *arg, uint64_t addr, uint64_t *value)
{
	struct fixture *f = arg;
	f->reads++;
	if (addr == f->fail_at)
		return vm_error_create(VM_ERR_EXCLUDED, addr, "0x%llx: excluded", (unsigned long long)addr);
	if (addr < f->g.base || addr + 8 > f->g.base + sizeof(f->mem))
		return vm_error_create(VM_ERR_BEYOND, addr, "0x%llx: beyond the fixture", (unsigned long long)addr);
	memcpy(value, f->mem + (addr - f->g.base), 8);
	return NULL;
}

static void setup_fixture(struct fixture *f, uint32_t red_left_pad, uint64_t random)
{
	memset(f, 0, sizeof(*f));
	f->g.base = BASE;
	f->g.red_left_pad = red_left_pad;
	f->g.end = BASE + red_left_pad + NOBJ * OBJ;
	f->g.size = OBJ;
	f->g.offset = 24;
	f->g.random = random;
}

static uint64_t object(const struct fixture *f, unsigned i)
{
	return f->g.base + f->g.red_left_pad + (uint64_t)i * OBJ;
}

/* Store the link of object obj to next, encoded as the kernel does. */
static void link_to(struct fixture *f, uint64_t obj, uint64_t next)
{
	uint64_t slot = obj + f->g.offset;
	uint64_t stored = next ^ f->g.random ^ __builtin_bswap64(slot);
	memcpy(f->mem + (slot - f->g.base), &stored, 8);
}

static void test_decode_link(void **state)
{
	(void)state;
	uint64_t slot = 0xffff888012340018ull, next = 0xffff888012340040ull;
	/* swab64 of the slot, spelled out: the bytes of 0xffff888012340018 reversed. */
	uint64_t stored = next ^ RANDOM ^ 0x180034128088ffffull;
	assert_int_equal(slab_decode_link(stored, RANDOM, slot), next);
	assert_int_not_equal(slab_decode_link(stored, 0, slot), next);
}

static void test_bad_pointer(void **state)
{
	(void)state;
	struct fixture f;
	setup_fixture(&f, 16, RANDOM);
	assert_null(slab_bad_pointer(&f.g, object(&f, 0)));
	assert_null(slab_bad_pointer(&f.g, object(&f, NOBJ - 1)));
	assert_string_equal(slab_bad_pointer(&f.g, BASE - 64), "outside the slab");
	assert_string_equal(slab_bad_pointer(&f.g, f.g.end), "outside the slab");
	assert_string_equal(slab_bad_pointer(&f.g, object(&f, 2) + 8), "not on an object boundary");
	/* The red-left pad itself holds no object. */
	assert_string_equal(slab_bad_pointer(&f.g, BASE), "not on an object boundary");
}

static void test_clean_list(void **state)
{
	(void)state;
	struct fixture f;
	setup_fixture(&f, 0, RANDOM);
	link_to(&f, object(&f, 3), object(&f, 7));
	link_to(&f, object(&f, 7), object(&f, 1));
	link_to(&f, object(&f, 1), 0);
	struct slab_freelist l;
	assert_null(slab_walk_freelist(&f.g, object(&f, 3), read_fixture, &f, &l));
	assert_int_equal(l.end, SLAB_WALK_END);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.objects[0], object(&f, 3));
	assert_int_equal(l.objects[1], object(&f, 7));
	assert_int_equal(l.objects[2], object(&f, 1));
	assert_null(l.message);
	assert_int_equal(slab_freelist_count(&l), 3);
	assert_int_equal(f.reads, 3);
	slab_freelist_free(&l);

	assert_null(slab_walk_freelist(&f.g, 0, read_fixture, &f, &l));
	assert_int_equal(l.n, 0);
	assert_int_equal(l.end, SLAB_WALK_END);
	slab_freelist_free(&l);
}

static void test_double_free_loop(void **state)
{
	(void)state;
	struct fixture f;
	setup_fixture(&f, 0, RANDOM);
	/* kfree(x), kfree(y), kfree(x): head x -> y -> x. */
	uint64_t x = object(&f, 5), y = object(&f, 9), z = object(&f, 2);
	link_to(&f, z, x);
	link_to(&f, x, y);
	link_to(&f, y, x);
	struct slab_freelist l;
	assert_null(slab_walk_freelist(&f.g, z, read_fixture, &f, &l));
	assert_int_equal(l.end, SLAB_WALK_DUPLICATE);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.pointer, x);
	assert_int_equal(l.cycle_start, 1);
	assert_non_null(strstr(l.message, "(position 3 repeats position 1): the list loops through 2 object(s): "
					 "0xffff888012340140 -> 0xffff888012340240 -> 0xffff888012340140"));
	assert_int_equal(slab_freelist_count(&l), 3);
	slab_freelist_free(&l);
}

static void test_bad_pointers_and_count(void **state)
{
	(void)state;
	struct fixture f;
	setup_fixture(&f, 0, RANDOM);
	uint64_t a = object(&f, 0), b = object(&f, 1);
	link_to(&f, a, b);
	link_to(&f, b, 0x4141414141414141ull);
	struct slab_freelist l;
	assert_null(slab_walk_freelist(&f.g, a, read_fixture, &f, &l));
	assert_int_equal(l.end, SLAB_WALK_OUTSIDE);
	assert_int_equal(l.n, 2);
	assert_non_null(strstr(l.message, "pointer 0x4141414141414141 outside the slab"));
	assert_non_null(strstr(l.message, "read from free object 0xffff888012340040"));
	/* crash counts a bad pointer as one more entry unless its bit 0 is set. */
	assert_int_equal(slab_freelist_count(&l), 2);
	slab_freelist_free(&l);

	link_to(&f, b, object(&f, 4) + 8);
	assert_null(slab_walk_freelist(&f.g, a, read_fixture, &f, &l));
	assert_int_equal(l.end, SLAB_WALK_OUTSIDE);
	assert_non_null(strstr(l.message, "not on an object boundary"));
	assert_int_equal(slab_freelist_count(&l), 3);
	slab_freelist_free(&l);

	assert_null(slab_walk_freelist(&f.g, BASE + 0x100000, read_fixture, &f, &l));
	assert_int_equal(l.n, 0);
	assert_non_null(strstr(l.message, "at the head"));
	slab_freelist_free(&l);
}

static void test_red_left_pad_and_link_slot(void **state)
{
	(void)state;
	struct fixture f;
	setup_fixture(&f, 32, 0);
	uint64_t last = object(&f, NOBJ - 1);
	link_to(&f, object(&f, 0), last);
	link_to(&f, last, 0);
	struct slab_freelist l;
	assert_null(slab_walk_freelist(&f.g, object(&f, 0), read_fixture, &f, &l));
	assert_int_equal(l.end, SLAB_WALK_END);
	assert_int_equal(l.n, 2);
	slab_freelist_free(&l);

	/* A link slot past the slab's end is never read. */
	f.g.offset = OBJ;
	f.reads = 0;
	assert_null(slab_walk_freelist(&f.g, last, read_fixture, &f, &l));
	assert_int_equal(l.end, SLAB_WALK_LINK_OUTSIDE);
	assert_int_equal(f.reads, 0);
	assert_non_null(strstr(l.message, "lies beyond the slab"));
	slab_freelist_free(&l);
}

static void test_read_failure_and_bad_geometry(void **state)
{
	(void)state;
	struct fixture f;
	setup_fixture(&f, 0, RANDOM);
	uint64_t a = object(&f, 6);
	link_to(&f, object(&f, 0), a);
	f.fail_at = a + f.g.offset;
	struct slab_freelist l;
	struct vm_error *err = slab_walk_freelist(&f.g, object(&f, 0), read_fixture, &f, &l);
	assert_non_null(err);
	assert_non_null(strstr(err->message, "free object 0xffff888012340180"));
	assert_non_null(strstr(err->message, "excluded"));
	assert_null(l.objects);
	vm_error_destroy(err);

	f.g.size = 0;
	err = slab_walk_freelist(&f.g, object(&f, 0), read_fixture, &f, &l);
	assert_non_null(err);
	assert_non_null(strstr(err->message, "object size 0"));
	vm_error_destroy(err);
}

/* A list through every object visits each once, whatever the order. */
static void test_full_slab_permutation(void **state)
{
	(void)state;
	struct fixture f;
	setup_fixture(&f, 0, RANDOM);
	unsigned order[NOBJ];
	for (unsigned i = 0; i < NOBJ; i++)
		order[i] = (i * 7) % NOBJ;
	for (unsigned i = 0; i < NOBJ; i++)
		link_to(&f, object(&f, order[i]), i + 1 < NOBJ ? object(&f, order[i + 1]) : 0);
	struct slab_freelist l;
	assert_null(slab_walk_freelist(&f.g, object(&f, order[0]), read_fixture, &f, &l));
	assert_int_equal(l.end, SLAB_WALK_END);
	assert_int_equal(l.n, NOBJ);
	slab_freelist_free(&l);
	/* The last object pointing back at the first: a loop through all of them. */
	link_to(&f, object(&f, order[NOBJ - 1]), object(&f, order[0]));
	assert_null(slab_walk_freelist(&f.g, object(&f, order[0]), read_fixture, &f, &l));
	assert_int_equal(l.end, SLAB_WALK_DUPLICATE);
	assert_int_equal(l.n, NOBJ);
	assert_int_equal(l.cycle_start, 0);
	slab_freelist_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_link),
		cmocka_unit_test(test_bad_pointer),
		cmocka_unit_test(test_clean_list),
		cmocka_unit_test(test_double_free_loop),
		cmocka_unit_test(test_bad_pointers_and_count),
		cmocka_unit_test(test_red_left_pad_and_link_slot),
		cmocka_unit_test(test_read_failure_and_bad_geometry),
		cmocka_unit_test(test_full_slab_permutation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
