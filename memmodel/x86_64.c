#include "x86_64.h"

#include <string.h>

uint64_t x86_cr3_to_root(uint64_t cr3, uint64_t sme_mask, bool pti)
{
	return cr3 & X86_PTE_ADDR_MASK & ~(pti ? 1ull << 12 : 0) & ~sme_mask;
}

bool x86_canonical(const struct x86_paging *p, uint64_t va)
{
	int bits = p->la57 ? 57 : 48;
	uint64_t top = va >> (bits - 1);
	return top == 0 || top == (~0ull >> (bits - 1));
}

struct level_desc {
	const char *name;
	int shift;
	bool may_be_leaf; /* PSE honoured: PUD (1G) and PMD (2M) */
};

static const struct level_desc levels5[] = {
	{ "PGD", 48, false }, { "P4D", 39, false }, { "PUD", 30, true }, { "PMD", 21, true }, { "PTE", 12, true },
};
/* Linux folds P4D into PGD with 4-level paging: the root level is called PGD. */
static const struct level_desc levels4[] = {
	{ "PGD", 39, false }, { "PUD", 30, true }, { "PMD", 21, true }, { "PTE", 12, true },
};

struct vm_error *x86_walk(const struct x86_paging *p, uint64_t root_pa, uint64_t va,
			  x86_read_phys_fn read, void *arg, uint64_t *pa, uint64_t *page_size,
			  struct kernel_walk *trace)
{
	const struct level_desc *lv = p->la57 ? levels5 : levels4;
	int nlevels = p->la57 ? 5 : 4;
	uint64_t entry_mask = X86_PTE_ADDR_MASK & ~p->sme_mask;
	uint64_t table = root_pa & entry_mask;

	if (trace) {
		memset(trace, 0, sizeof(*trace));
		trace->how = "page tables";
	}
	if (!x86_canonical(p, va))
		return vm_error_create(VM_ERR_NOT_MAPPED, va, "0x%016llx: not mapped: not canonical for %d-level paging",
				       (unsigned long long)va, nlevels);

	for (int i = 0; i < nlevels; i++) {
		uint64_t index = (va >> lv[i].shift) & 511;
		uint64_t entry_pa = table + index * 8;
		uint64_t entry;
		struct vm_error *err = read(arg, entry_pa, &entry, sizeof(entry));
		if (err)
			return vm_error_prefix(err, "0x%016llx: reading %s entry at 0x%llx", (unsigned long long)va,
					       lv[i].name, (unsigned long long)entry_pa);
		if (trace) {
			trace->level[i].name = lv[i].name;
			trace->level[i].table_pa = table;
			trace->level[i].index = index;
			trace->level[i].entry = entry;
			trace->nlevels = i + 1;
		}
		if (!(entry & X86_PTE_PRESENT))
			return vm_error_create(VM_ERR_NOT_MAPPED, va,
					       "0x%016llx: not mapped: %s entry 0x%llx at 0x%llx not present",
					       (unsigned long long)va, lv[i].name, (unsigned long long)entry,
					       (unsigned long long)entry_pa);
		bool last = i == nlevels - 1;
		if (last || (lv[i].may_be_leaf && (entry & X86_PTE_PSE))) {
			/* Masking with the leaf size also drops PAT (bit 12) of 2M/1G leaves. */
			uint64_t size = 1ull << lv[i].shift;
			*pa = (entry & entry_mask & ~(size - 1)) | (va & (size - 1));
			*page_size = size;
			if (trace) {
				trace->mapped = true;
				trace->pa = *pa;
				trace->page_size = size;
			}
			return NULL;
		}
		table = entry & entry_mask;
	}
	return vm_error_create(VM_ERR_NOT_MAPPED, va, "0x%016llx: not mapped", (unsigned long long)va);
}
