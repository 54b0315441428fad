/*
 * x86_64 page-table walks (4- and 5-level, 1G/2M/4K leaves) over a physical-read callback,
 * so the walker knows nothing of dump formats and can be tested on fixture tables.
 */
#ifndef MEMMODEL_X86_64_H
#define MEMMODEL_X86_64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "kernel.h"

#define X86_START_KERNEL_MAP 0xffffffff80000000ull
#define X86_PAGE_SIZE 4096ull
#define X86_PTE_PRESENT (1ull << 0)
#define X86_PTE_PSE (1ull << 7)
#define X86_CR4_LA57 (1ull << 12)
/* Physical address bits of a table entry: 12..51 (__PHYSICAL_MASK_SHIFT 52). */
#define X86_PTE_ADDR_MASK 0x000ffffffffff000ull

/* Reads len bytes of physical memory; errors keep the physical layer's code and address. */
typedef struct vm_error *(*x86_read_phys_fn)(void *arg, uint64_t pa, void *buf, size_t len);

struct x86_paging {
	bool la57;          /* 5-level */
	uint64_t sme_mask;  /* SME/SEV C-bit, cleared from CR3 and every entry */
};

/*
 * Kernel root table address from a CR3 value: drops PCID (bits 0..11), LAM/noflush (>= 52) and the
 * C-bit; with PTI also bit 12, which selects the user half of the 8 KiB PGD pair.
 */
uint64_t x86_cr3_to_root(uint64_t cr3, uint64_t sme_mask, bool pti);

/* Whether va is canonical for the paging mode (47 or 56 significant bits). */
bool x86_canonical(const struct x86_paging *p, uint64_t va);

/*
 * Translate va through the tables at root_pa. On success *pa is the physical address of va and
 * *page_size the size of the leaf (4K, 2M or 1G). A non-present entry gives VM_ERR_NOT_MAPPED naming
 * the level, the entry and its address; a failed table read keeps the dump's error code.
 * trace (may be NULL) receives every level visited. The walk reads at most one entry per level.
 */
struct vm_error *x86_walk(const struct x86_paging *p, uint64_t root_pa, uint64_t va,
			  x86_read_phys_fn read, void *arg, uint64_t *pa, uint64_t *page_size,
			  struct kernel_walk *trace);

#endif
