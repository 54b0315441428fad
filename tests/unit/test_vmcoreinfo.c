/* VMCOREINFO lookups and their format quirks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "vmcoreinfo.h"

static const char text[] =
	"OSRELEASE=6.1.0-56-amd64\n"
	"BUILD-ID=0123456789ABCDEF0123456789abcdef01234567\n"
	"PAGESIZE=4096\n"
	"SYMBOL(init_uts_ns)=ffffffffb5617a40\n"
	"OFFSET(uts_namespace.name)=4\n"
	"SYMBOL(_stext)=ffffffffb3a00000\n"
	"NUMBER(VMALLOC_START)=0xffa0000000000000\n"
	"SIZE(page)=64\n"
	"LENGTH(mem_section)=2048\n"
	"NUMBER(phys_base)=-1006632960\n"
	"NUMBER(sme_mask)=0\n"
	"NUMBER(pgtable_l5_enabled)=1\n"
	"KERNELOFFSET=32a00000\n"
	"NUMBER(KERNEL_IMAGE_SIZE)=1073741824\n"
	"SYMBOL(bad)=xyz\n"
	"NUMBER(bad)=12abc\n"
	"OFFSET(bad.neg)=-4\n"
	"CRASHTIME=1763776581";

static void test_lookups(void **state)
{
	(void)state;
	uint64_t u;
	int64_t s;
	char buf[65];
	assert_null(vmcoreinfo_symbol(text, "init_uts_ns", &u));
	assert_int_equal(u, 0xffffffffb5617a40ull);
	assert_null(vmcoreinfo_number(text, "VMALLOC_START", &s));
	assert_int_equal((uint64_t)s, 0xffa0000000000000ull);
	assert_null(vmcoreinfo_number(text, "phys_base", &s));
	assert_int_equal(s, -1006632960);
	assert_null(vmcoreinfo_number(text, "pgtable_l5_enabled", &s));
	assert_int_equal(s, 1);
	assert_null(vmcoreinfo_offset(text, "uts_namespace.name", &u));
	assert_int_equal(u, 4);
	assert_null(vmcoreinfo_size(text, "page", &u));
	assert_int_equal(u, 64);
	assert_null(vmcoreinfo_length(text, "mem_section", &u));
	assert_int_equal(u, 2048);
	assert_null(vmcoreinfo_kerneloffset(text, &u));
	assert_int_equal(u, 0x32a00000);
	assert_null(vmcoreinfo_pagesize(text, &u));
	assert_int_equal(u, 4096);
	assert_null(vmcoreinfo_crashtime(text, &s)); /* last line, no newline */
	assert_int_equal(s, 1763776581);
	assert_null(vmcoreinfo_osrelease(text, buf, sizeof(buf)));
	assert_string_equal(buf, "6.1.0-56-amd64");
	char id[41];
	assert_null(vmcoreinfo_build_id(text, id, sizeof(id)));
	assert_string_equal(id, "0123456789abcdef0123456789abcdef01234567");
	assert_null(vmcoreinfo_value(text, "SYMBOL(_stext)", buf, sizeof(buf)));
	assert_string_equal(buf, "ffffffffb3a00000");
	/* Truncation to the buffer. */
	char small[4];
	assert_null(vmcoreinfo_osrelease(text, small, sizeof(small)));
	assert_string_equal(small, "6.1");
}

static void test_errors(void **state)
{
	(void)state;
	uint64_t u;
	int64_t s;
	struct vm_error *err;
	/* Missing key; a key that is only a prefix of another does not match. */
	err = vmcoreinfo_symbol(text, "init_uts", &u);
	assert_non_null(err);
	assert_int_equal(err->code, VM_ERR_NOT_FOUND);
	vm_error_destroy(err);
	err = vmcoreinfo_number(NULL, "phys_base", &s);
	assert_int_equal(err->code, VM_ERR_NOT_FOUND);
	vm_error_destroy(err);
	/* Malformed values. */
	err = vmcoreinfo_symbol(text, "bad", &u);
	assert_int_equal(err->code, VM_ERR_FORMAT);
	assert_non_null(strstr(err->message, "SYMBOL(bad)"));
	vm_error_destroy(err);
	err = vmcoreinfo_number(text, "bad", &s);
	assert_int_equal(err->code, VM_ERR_FORMAT);
	vm_error_destroy(err);
	err = vmcoreinfo_offset(text, "bad.neg", &u);
	assert_int_equal(err->code, VM_ERR_FORMAT);
	vm_error_destroy(err);
	/* Hex without 0x is not decimal: NUMBER() is decimal (QEMU's hex parse is the known bug). */
	err = vmcoreinfo_number("NUMBER(phys_base)=1f000000\n", "phys_base", &s);
	assert_int_equal(err->code, VM_ERR_FORMAT);
	vm_error_destroy(err);
	char id[8];
	err = vmcoreinfo_build_id(text, id, sizeof(id));
	assert_int_equal(err->code, VM_ERR_INVALID);
	vm_error_destroy(err);
	err = vmcoreinfo_build_id("BUILD-ID=abc\n", id, sizeof(id));
	assert_int_equal(err->code, VM_ERR_FORMAT);
	vm_error_destroy(err);
}

static void test_crlf_and_empty(void **state)
{
	(void)state;
	int64_t s;
	uint64_t u;
	assert_null(vmcoreinfo_number("X=1\r\nNUMBER(a)=42\r\n", "a", &s));
	assert_int_equal(s, 42);
	struct vm_error *err = vmcoreinfo_symbol("SYMBOL(a)=\n", "a", &u);
	assert_int_equal(err->code, VM_ERR_FORMAT);
	vm_error_destroy(err);
	err = vmcoreinfo_symbol("", "a", &u);
	assert_int_equal(err->code, VM_ERR_NOT_FOUND);
	vm_error_destroy(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookups),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_crlf_and_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
