/* Kernel model: opening, symbols, translation with a small TLB, and reads in each address space. */
#include "kernel_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmcoreinfo.h"

static struct vm_error *check_build_id(struct kernel *k)
{
	char dump_id[41];
	const char *file_id = vmlinux_build_id(k->vml);
	if (!k->vmci || vmcoreinfo_build_id(k->vmci, dump_id, sizeof(dump_id)) != NULL || !*file_id)
		return NULL; /* nothing to compare; the linux_banner check in layout.c still applies */
	if (strcmp(dump_id, file_id) != 0)
		return vm_error_create(VM_ERR_INVALID, 0, "%s: build-id %s does not match the dump's %s (wrong vmlinux)",
				       vmlinux_path(k->vml), file_id, dump_id);
	return NULL;
}

struct vm_error *kernel_open(struct dump *dump, const char *vmlinux, struct kernel **ret)
{
	struct kernel *k = calloc(1, sizeof(*k));
	if (!k)
		return &vm_error_nomem;
	k->dump = dump;
	k->vmci = dump_vmcoreinfo(dump);
	k->info.panic_cpu = -1;
	struct vm_error *err = NULL;
	if (vmlinux) {
		err = vmlinux_open(vmlinux, &k->vml);
		if (err)
			goto fail;
		k->info.have_vmlinux = true;
		snprintf(k->info.build_id, sizeof(k->info.build_id), "%s", vmlinux_build_id(k->vml));
		err = check_build_id(k);
		if (err)
			goto fail;
	}
	err = kernel_layout_init(k);
	if (err)
		goto fail;
	if (k->vml) {
		err = kernel_task_offsets_init(k);
		if (err)
			goto fail;
	}
	err = kernel_cpus_init(k);
	if (err)
		goto fail;
	kernel_printk_scan(k);
	kernel_memory_init(k);
	*ret = k;
	return NULL;
fail:
	kernel_close(k);
	return err;
}

void kernel_close(struct kernel *k)
{
	if (!k)
		return;
	vmlinux_close(k->vml);
	free(k->cpus);
	free(k->tasks);
	free(k);
}

struct dump *kernel_dump(const struct kernel *k)
{
	return k->dump;
}

const struct kernel_info *kernel_info(const struct kernel *k)
{
	return &k->info;
}

struct vm_error *kernel_symbol(struct kernel *k, const char *name, uint64_t *addr)
{
	return kernel_symbol_runtime(k, name, addr);
}

struct vm_error *kernel_symbol_runtime(struct kernel *k, const char *name, uint64_t *addr)
{
	uint64_t link;
	if (!k->vml) {
		if (k->vmci && vmcoreinfo_symbol(k->vmci, name, addr) == NULL)
			return NULL;
		return vm_error_create(VM_ERR_NOT_FOUND, 0, "symbol %s: no vmlinux given and not in VMCOREINFO", name);
	}
	struct vm_error *err = vmlinux_symbol(k->vml, name, &link);
	if (err)
		return err;
	/* Only the kernel image moves with KASLR; zero-based per-CPU symbols stay put. */
	if (!vmlinux_is_percpu(k->vml, link) && link >= X86_START_KERNEL_MAP)
		link += k->info.kaslr_offset;
	*addr = link;
	return NULL;
}

struct vm_error *kernel_read_phys_cb(void *arg, uint64_t pa, void *buf, size_t len)
{
	struct kernel *k = arg;
	return dump_read_phys(k->dump, pa, buf, len, false);
}

/*
 * Translate through the TLB, walking the tables on a miss. *span: bytes from va to the end of
 * its mapping (up to 1 GiB on the direct map), physically contiguous.
 */
static struct vm_error *translate(struct kernel *k, uint64_t root, uint64_t va, uint64_t *pa, uint64_t *span)
{
	for (unsigned n = 0, i = k->tlb_last; n < KERNEL_TLB_SIZE; n++, i = (i + 1) % KERNEL_TLB_SIZE) {
		struct tlb_entry *e = &k->tlb[i];
		if (e->size && e->root == root && va - e->vbase < e->size) {
			k->tlb_last = i;
			*pa = e->pbase + (va - e->vbase);
			*span = e->size - (va - e->vbase);
			return NULL;
		}
	}
	uint64_t size;
	struct vm_error *err = x86_walk(&k->paging, root, va, kernel_read_phys_cb, k, pa, &size, NULL);
	if (err)
		return err;
	k->tlb_last = k->tlb_next % KERNEL_TLB_SIZE;
	struct tlb_entry *e = &k->tlb[k->tlb_next++ % KERNEL_TLB_SIZE];
	e->root = root;
	e->vbase = va & ~(size - 1);
	e->pbase = *pa & ~(size - 1);
	e->size = size;
	*span = size - (va - e->vbase);
	return NULL;
}

struct vm_error *kernel_read(struct kernel *k, const struct kernel_read_opts *o, uint64_t addr, void *buf,
			     size_t len, size_t *done)
{
	size_t got = 0;
	struct vm_error *err = NULL;
	if (done)
		*done = 0;
	if (o->as == KAS_PHYS) {
		err = dump_read_phys(k->dump, addr, buf, len, o->zero_excluded);
		if (!err && done)
			*done = len;
		return err;
	}
	if (o->as == KAS_USER && !o->pgd_pa)
		return vm_error_create(VM_ERR_INVALID, addr, "0x%016llx: no user address space (kernel thread)",
				       (unsigned long long)addr);
	uint64_t root = o->as == KAS_USER ? o->pgd_pa : k->info.root_pgt;
	bool by_page = false;
	while (got < len) {
		uint64_t va = addr + got, pa, span;
		err = translate(k, root, va, &pa, &span);
		if (err)
			break;
		/*
		 * The rest of a large page in one read: for an ELF dump that is one pread instead of
		 * one per 4K page.
		 */
		if (!by_page && span > X86_PAGE_SIZE - (va & (X86_PAGE_SIZE - 1))) {
			uint64_t chunk = span < len - got ? span : len - got;
			err = dump_read_phys(k->dump, pa, (char *)buf + got, chunk, o->zero_excluded);
			if (!err) {
				got += chunk;
				continue;
			}
			/* Some page in it failed: go page by page to stop exactly at that page. */
			vm_error_destroy(err);
			by_page = true;
		}
		/* Within one 4K page: a large page may span ranges with different dump states. */
		uint64_t chunk = X86_PAGE_SIZE - (va & (X86_PAGE_SIZE - 1));
		if (chunk > len - got)
			chunk = len - got;
		err = dump_read_phys(k->dump, pa, (char *)buf + got, chunk, o->zero_excluded);
		if (err) {
			err = vm_error_prefix(err, "0x%016llx", (unsigned long long)va);
			break;
		}
		got += chunk;
	}
	if (done)
		*done = got;
	return err;
}

struct vm_error *kernel_read_kva(struct kernel *k, uint64_t va, void *buf, size_t len)
{
	static const struct kernel_read_opts kopts = { .as = KAS_KERNEL };
	return kernel_read(k, &kopts, va, buf, len, NULL);
}

struct vm_error *kernel_read_u64(struct kernel *k, uint64_t va, uint64_t *val)
{
	return kernel_read_kva(k, va, val, sizeof(*val));
}

struct vm_error *kernel_read_u32(struct kernel *k, uint64_t va, uint32_t *val)
{
	return kernel_read_kva(k, va, val, sizeof(*val));
}

struct vm_error *kernel_vtop(struct kernel *k, uint64_t pgd_pa, uint64_t va, struct kernel_walk *walk)
{
	uint64_t pa, size;
	return x86_walk(&k->paging, pgd_pa ? pgd_pa : k->info.root_pgt, va, kernel_read_phys_cb, k, &pa, &size, walk);
}
