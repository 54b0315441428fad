/* grow_array: capacity growth, kept contents, and refusal of sizes that overflow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

#include "growarray.h"

struct pair {
	uint64_t a, b;
};

static void test_appends_keep_contents(void **state)
{
	(void)state;
	struct pair *v = NULL;
	size_t n = 0, cap = 0, grows = 0;
	for (uint64_t i = 0; i < 10000; i++) {
		size_t before = cap;
		assert_null(grow_array(&v, &cap, n + 1, sizeof(*v)));
		assert_true(cap >= n + 1);
		if (cap != before) {
			grows++;
			assert_true(before == 0 || cap >= 2 * before);
		}
		v[n++] = (struct pair){ i, ~i };
	}
	/* 16 doubled to 16384: eleven reallocations for ten thousand appends. */
	assert_int_equal(grows, 11);
	assert_int_equal(cap, 16384);
	for (uint64_t i = 0; i < n; i++) {
		assert_int_equal(v[i].a, i);
		assert_int_equal(v[i].b, ~i);
	}
	free(v);
}

static void test_room_already(void **state)
{
	(void)state;
	char *v = NULL;
	size_t cap = 0;
	assert_null(grow_array(&v, &cap, 0, 1));
	assert_null(v);
	assert_int_equal(cap, 0);
	assert_null(grow_array(&v, &cap, 5, 1));
	char *first = v;
	assert_int_equal(cap, 16);
	assert_null(grow_array(&v, &cap, 16, 1));
	assert_ptr_equal(v, first);
	assert_int_equal(cap, 16);
	free(v);
}

static void test_jump_past_double(void **state)
{
	(void)state;
	uint32_t *v = NULL;
	size_t cap = 0;
	assert_null(grow_array(&v, &cap, 100, sizeof(*v)));
	assert_int_equal(cap, 128);
	v[99] = 7;
	assert_null(grow_array(&v, &cap, 1000, sizeof(*v)));
	assert_int_equal(cap, 1024);
	assert_int_equal(v[99], 7);
	free(v);
}

static void test_overflow_refused(void **state)
{
	(void)state;
	struct pair *v = NULL;
	size_t cap = 0;
	assert_null(grow_array(&v, &cap, 4, sizeof(*v)));
	struct pair *kept = v;
	v[3].a = 42;
	/* need * elem_size would wrap around to a small allocation. */
	size_t need = SIZE_MAX / sizeof(*v) + 2;
	struct vm_error *err = grow_array(&v, &cap, need, sizeof(*v));
	assert_ptr_equal(err, &vm_error_nomem);
	assert_ptr_equal(v, kept);
	assert_int_equal(cap, 16);
	assert_int_equal(v[3].a, 42);
	free(v);

	char *bytes = NULL;
	size_t bcap = 0;
	assert_ptr_equal(grow_array(&bytes, &bcap, 1, 0), &vm_error_nomem);
	assert_null(bytes);
	assert_int_equal(bcap, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_appends_keep_contents),
		cmocka_unit_test(test_room_already),
		cmocka_unit_test(test_jump_past_double),
		cmocka_unit_test(test_overflow_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
