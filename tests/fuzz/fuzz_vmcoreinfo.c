/* VMCOREINFO text lookups: every key kind, on arbitrary text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmcoreinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	uint64_t u;
	int64_t s;
	char buf[65], id[41];
	struct vm_error *errs[] = {
		vmcoreinfo_symbol(text, "init_top_pgt", &u),
		vmcoreinfo_number(text, "phys_base", &s),
		vmcoreinfo_number(text, "VMALLOC_START", &s),
		vmcoreinfo_offset(text, "page.flags", &u),
		vmcoreinfo_size(text, "page", &u),
		vmcoreinfo_length(text, "mem_section", &u),
		vmcoreinfo_kerneloffset(text, &u),
		vmcoreinfo_pagesize(text, &u),
		vmcoreinfo_crashtime(text, &s),
		vmcoreinfo_osrelease(text, buf, sizeof(buf)),
		vmcoreinfo_build_id(text, id, sizeof(id)),
		vmcoreinfo_value(text, "", buf, sizeof(buf)),
	};
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
		vm_error_destroy(errs[i]);
	free(text);
	return 0;
}
