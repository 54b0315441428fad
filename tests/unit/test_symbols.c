/* vmlinux symbols and DWARF lookups, run on this test binary itself (built with -g). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "symbols.h"

/* Fixture types: nested members, an anonymous union/struct, a typedef'd member, an array. */
typedef unsigned long fixture_word;
struct fixture_inner {
	int a;
	fixture_word sp;
};
struct fixture_outer {
	char pad[24];
	union {
		struct {
			short x;
			long y;
		};
		double z;
	};
	struct fixture_inner inner;
	const struct fixture_inner *ptr;
	unsigned char comm[16];
};

/* Referenced so the compiler keeps the type and the symbol. */
struct fixture_outer fixture_global;

static struct vmlinux *open_self(void)
{
	struct vmlinux *v;
	struct vm_error *err = vmlinux_open("/proc/self/exe", &v);
	if (err)
		fail_msg("%s", err->message);
	return v;
}

static void test_member_paths(void **state)
{
	(void)state;
	struct vmlinux *v = open_self();
	uint64_t off, size;
	assert_null(vmlinux_member(v, "fixture_outer", "inner.sp", &off, &size));
	assert_int_equal(off, offsetof(struct fixture_outer, inner.sp));
	assert_int_equal(size, sizeof(fixture_word));
	/* Members of anonymous structs and unions are found through them. */
	assert_null(vmlinux_member(v, "fixture_outer", "y", &off, &size));
	assert_int_equal(off, offsetof(struct fixture_outer, y));
	assert_null(vmlinux_member(v, "fixture_outer", "z", &off, &size));
	assert_int_equal(off, offsetof(struct fixture_outer, z));
	assert_null(vmlinux_member(v, "fixture_outer", "comm", &off, &size));
	assert_int_equal(off, offsetof(struct fixture_outer, comm));
	assert_int_equal(size, 16);
	assert_null(vmlinux_member(v, "fixture_outer", "ptr", &off, &size));
	assert_int_equal(size, 8);
	assert_null(vmlinux_type_size(v, "fixture_outer", &size));
	assert_int_equal(size, sizeof(struct fixture_outer));
	/* A second lookup comes from the cache and agrees. */
	assert_null(vmlinux_member(v, "fixture_outer", "inner.a", &off, NULL));
	assert_int_equal(off, offsetof(struct fixture_outer, inner.a));
	vmlinux_close(v);
}

static void test_missing(void **state)
{
	(void)state;
	struct vmlinux *v = open_self();
	uint64_t off;
	struct vm_error *err = vmlinux_member(v, "fixture_outer", "inner.nope", &off, NULL);
	assert_non_null(err);
	assert_int_equal(err->code, VM_ERR_NOT_FOUND);
	assert_non_null(strstr(err->message, "inner.nope"));
	vm_error_destroy(err);
	err = vmlinux_symbol(v, "no_such_symbol_here", &off);
	assert_non_null(err);
	assert_int_equal(err->code, VM_ERR_NOT_FOUND);
	vm_error_destroy(err);
	vmlinux_close(v);
}

static void test_symbols(void **state)
{
	(void)state;
	struct vmlinux *v = open_self();
	uint64_t a, b;
	assert_null(vmlinux_symbol(v, "test_symbols", &a));
	assert_null(vmlinux_symbol(v, "test_missing", &b));
	/* Link-time addresses: their distance is the distance at run time. */
	assert_int_equal((int64_t)(a - b), (intptr_t)test_symbols - (intptr_t)test_missing);
	assert_null(vmlinux_symbol(v, "fixture_global", &a));
	assert_false(vmlinux_is_percpu(v, a)); /* no .data..percpu section here */
	assert_int_equal(strlen(vmlinux_build_id(v)) % 2, 0);
	vmlinux_close(v);
}

static void test_not_elf(void **state)
{
	(void)state;
	struct vmlinux *v;
	struct vm_error *err = vmlinux_open("/proc/self/cmdline", &v);
	assert_non_null(err);
	assert_non_null(strstr(err->message, "/proc/self/cmdline"));
	vm_error_destroy(err);
	err = vmlinux_open("/nonexistent/vmlinux", &v);
	assert_non_null(err);
	assert_int_equal(err->code, VM_ERR_OS);
	vm_error_destroy(err);
}

int main(void)
{
	fixture_global.comm[0] = 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_member_paths),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_symbols),
		cmocka_unit_test(test_not_elf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
