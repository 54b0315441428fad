/*
 * Where the kernel sits: KASLR offset, phys_base, paging mode and root table, then the randomised
 * direct-map, vmalloc and vmemmap bases. VMCOREINFO when the dump has it; otherwise from a QEMU
 * note's CR3 and vmlinux, as crash's calc_kaslr_offset does.
 */
#include "kernel_priv.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "vmcoreinfo.h"

#define PAGE_OFFSET_L4 0xffff888000000000ull
#define PAGE_OFFSET_L5 0xff11000000000000ull
#define KERNEL_IMAGE_SIZE_MAX (1ull << 30)

static const struct dump_cpu_note *first_qemu_note(struct kernel *k)
{
	const struct dump_cpu_note *notes;
	size_t n = dump_cpu_notes(k->dump, &notes);
	for (size_t i = 0; i < n; i++)
		if (notes[i].has_qemu && notes[i].qemu.cr[3])
			return &notes[i];
	return NULL;
}

static struct vm_error *layout_from_vmcoreinfo(struct kernel *k)
{
	struct kernel_info *in = &k->info;
	int64_t num;
	uint64_t pgt;
	struct vm_error *err = vmcoreinfo_kerneloffset(k->vmci, &in->kaslr_offset);
	if (err && err->code != VM_ERR_NOT_FOUND)
		return err;
	vm_error_destroy(err);

	err = vmcoreinfo_number(k->vmci, "phys_base", &num);
	if (!err) {
		in->phys_base = (uint64_t)num;
	} else if (err->code == VM_ERR_NOT_FOUND && dump_describe(k->dump)->has_phys_base) {
		vm_error_destroy(err);
		in->phys_base = dump_describe(k->dump)->phys_base;
	} else {
		return vm_error_prefix(err, "VMCOREINFO has no usable NUMBER(phys_base)");
	}

	err = vmcoreinfo_symbol(k->vmci, "init_top_pgt", &pgt);
	if (err && err->code == VM_ERR_NOT_FOUND) {
		vm_error_destroy(err);
		err = vmcoreinfo_symbol(k->vmci, "swapper_pg_dir", &pgt);
	}
	if (err)
		return vm_error_prefix(err, "VMCOREINFO: no root page table");
	in->root_pgt = pgt - X86_START_KERNEL_MAP + in->phys_base;

	err = vmcoreinfo_number(k->vmci, "pgtable_l5_enabled", &num);
	if (!err) {
		in->la57 = num != 0;
	} else {
		vm_error_destroy(err);
		const struct dump_cpu_note *q = first_qemu_note(k);
		in->la57 = q && (q->qemu.cr[4] & X86_CR4_LA57);
	}
	err = vmcoreinfo_number(k->vmci, "sme_mask", &num);
	if (!err)
		in->sme_mask = (uint64_t)num;
	vm_error_destroy(err);
	snprintf(k->layout_source, sizeof(k->layout_source), "VMCOREINFO");
	return NULL;
}

/*
 * No VMCOREINFO: the kernel image is the first mapping above __START_KERNEL_map in CR3's tables
 * (the kernel unmaps what lies below _text), which gives the KASLR offset and phys_base at once.
 */
static struct vm_error *layout_from_cr3(struct kernel *k)
{
	struct kernel_info *in = &k->info;
	const struct dump_cpu_note *q = first_qemu_note(k);
	if (!q)
		return vm_error_create(VM_ERR_NOT_FOUND, 0,
				       "the dump has neither VMCOREINFO nor a QEMU CPU note with CR3: cannot locate the kernel");
	if (!k->vml)
		return vm_error_create(VM_ERR_INVALID, 0, "the dump has no VMCOREINFO: vmlinux is needed to locate the kernel");
	in->la57 = (q->qemu.cr[4] & X86_CR4_LA57) != 0;
	k->paging.la57 = in->la57;
	uint64_t text, pti_init;
	struct vm_error *err = vmlinux_symbol(k->vml, "pti_init", &pti_init);
	bool pti = err == NULL;
	vm_error_destroy(err);
	uint64_t root = x86_cr3_to_root(q->qemu.cr[3], 0, pti);
	err = vmlinux_symbol(k->vml, "_text", &text);
	if (err)
		return err;
	for (uint64_t va = X86_START_KERNEL_MAP; va < X86_START_KERNEL_MAP + KERNEL_IMAGE_SIZE_MAX; va += 2ull << 20) {
		uint64_t pa, size;
		err = x86_walk(&k->paging, root, va, kernel_read_phys_cb, k, &pa, &size, NULL);
		if (err) {
			vm_error_destroy(err);
			continue;
		}
		in->kaslr_offset = va - text;
		in->phys_base = pa - (va - X86_START_KERNEL_MAP);
		uint64_t pgt;
		err = vmlinux_symbol(k->vml, "init_top_pgt", &pgt);
		if (err)
			return err;
		in->root_pgt = pgt + in->kaslr_offset - X86_START_KERNEL_MAP + in->phys_base;
		snprintf(k->layout_source, sizeof(k->layout_source), "CR3 and vmlinux (no VMCOREINFO)");
		return NULL;
	}
	return vm_error_create(VM_ERR_NOT_FOUND, X86_START_KERNEL_MAP,
			       "no kernel mapping above 0x%llx in the page tables at CR3 0x%llx",
			       (unsigned long long)X86_START_KERNEL_MAP, (unsigned long long)q->qemu.cr[3]);
}

/* A wrong vmlinux or a wrong layout shows at once: linux_banner must read "Linux version". */
static struct vm_error *check_banner(struct kernel *k)
{
	uint64_t addr;
	char banner[14];
	struct vm_error *err = kernel_symbol_runtime(k, "linux_banner", &addr);
	if (err)
		return err;
	err = kernel_read_kva(k, addr, banner, sizeof(banner));
	if (err)
		return vm_error_prefix(err, "reading linux_banner (KASLR offset 0x%llx, phys_base 0x%llx)",
				       (unsigned long long)k->info.kaslr_offset, (unsigned long long)k->info.phys_base);
	if (memcmp(banner, "Linux version ", sizeof(banner)) != 0)
		return vm_error_create(VM_ERR_INVALID, addr,
				       "linux_banner at 0x%llx does not read \"Linux version\": %s does not match the dump",
				       (unsigned long long)addr, vmlinux_path(k->vml));
	return NULL;
}

/* The kernel's own variables for the randomised region bases, when vmlinux tells where they are. */
static void read_region_bases(struct kernel *k)
{
	struct kernel_info *in = &k->info;
	in->page_offset = in->la57 ? PAGE_OFFSET_L5 : PAGE_OFFSET_L4;
	in->vmalloc_start = in->la57 ? 0xffa0000000000000ull : 0xffffc90000000000ull;
	in->vmemmap_base = in->la57 ? 0xffd4000000000000ull : 0xffffea0000000000ull;
	int64_t num;
	uint64_t sym;
	if (k->vmci) {
		struct vm_error *err = vmcoreinfo_number(k->vmci, "VMALLOC_START", &num);
		if (!err)
			in->vmalloc_start = (uint64_t)num;
		vm_error_destroy(err);
		err = vmcoreinfo_symbol(k->vmci, "vmemmap", &sym);
		if (!err)
			in->vmemmap_base = sym;
		vm_error_destroy(err);
	}
	if (!k->vml)
		return;
	static const struct { const char *sym; size_t off; } vars[] = {
		{ "page_offset_base", offsetof(struct kernel_info, page_offset) },
		{ "vmalloc_base", offsetof(struct kernel_info, vmalloc_start) },
		{ "vmemmap_base", offsetof(struct kernel_info, vmemmap_base) },
	};
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		uint64_t addr, val;
		struct vm_error *err = kernel_symbol_runtime(k, vars[i].sym, &addr);
		if (!err)
			err = kernel_read_u64(k, addr, &val);
		if (!err)
			memcpy((char *)in + vars[i].off, &val, sizeof(val));
		vm_error_destroy(err);
	}
}

/* init_uts_ns: utsname fields as the running kernel had them. */
static void read_utsname(struct kernel *k)
{
	uint64_t addr, name_off = 0;
	struct vm_error *err = kernel_symbol_runtime(k, "init_uts_ns", &addr);
	if (err) {
		vm_error_destroy(err);
		return;
	}
	if (k->vmci && (err = vmcoreinfo_offset(k->vmci, "uts_namespace.name", &name_off)) != NULL) {
		vm_error_destroy(err);
		if (!k->vml || (err = vmlinux_member(k->vml, "uts_namespace", "name", &name_off, NULL)) != NULL) {
			vm_error_destroy(err);
			return;
		}
	}
	char uts[6][65]; /* sysname nodename release version machine domainname */
	err = kernel_read_kva(k, addr + name_off, uts, sizeof(uts));
	if (err) {
		vm_error_destroy(err);
		return;
	}
	for (int i = 0; i < 6; i++)
		uts[i][64] = 0;
	snprintf(k->info.nodename, sizeof(k->info.nodename), "%s", uts[1]);
	if (!k->info.release[0])
		snprintf(k->info.release, sizeof(k->info.release), "%s", uts[2]);
	snprintf(k->info.version, sizeof(k->info.version), "%s", uts[3]);
	snprintf(k->info.machine, sizeof(k->info.machine), "%s", uts[4]);
}

/*
 * Wall-clock time of the last timekeeping update, for dumps without CRASHTIME (QEMU's): the shadow
 * timekeeper is a plain `struct timekeeper`, unlike tk_core whose wrapper type has no name.
 */
static void read_wall_time(struct kernel *k)
{
	uint64_t addr, off, sec;
	struct vm_error *err = kernel_symbol_runtime(k, "shadow_timekeeper", &addr);
	if (!err)
		err = vmlinux_member(k->vml, "timekeeper", "xtime_sec", &off, NULL);
	if (!err)
		err = kernel_read_u64(k, addr + off, &sec);
	if (!err)
		k->info.crash_time = sec;
	vm_error_destroy(err);
}

/*
 * Uptime as crash's `sys` shows it: jiffies since boot (jiffies_64 starts at INITIAL_JIFFIES,
 * -300 s as a 32-bit count, to catch wrap bugs early) times the tick length.
 */
static void read_uptime_from_jiffies(struct kernel *k)
{
	uint64_t jiffies_addr, tick_addr, jiffies, tick_nsec = 0;
	struct vm_error *err = kernel_symbol_runtime(k, "jiffies_64", &jiffies_addr);
	if (!err)
		err = kernel_symbol_runtime(k, "tick_nsec", &tick_addr);
	if (!err)
		err = kernel_read_u64(k, jiffies_addr, &jiffies);
	if (!err)
		err = kernel_read_u64(k, tick_addr, &tick_nsec);
	if (!err && tick_nsec) {
		uint64_t hz = (1000000000ull + tick_nsec / 2) / tick_nsec;
		uint64_t initial = (uint32_t)(-300 * (int64_t)hz);
		if (jiffies >= initial)
			k->info.uptime_ns = (jiffies - initial) * tick_nsec;
	}
	vm_error_destroy(err);
}

/* Without vmlinux the direct map base still shows in an ELF dump's direct-map PT_LOADs. */
static void page_offset_from_segments(struct kernel *k)
{
	const struct dump_segment *segs;
	size_t n = dump_segments(k->dump, &segs);
	for (size_t i = 0; i < n; i++) {
		if (segs[i].vaddr >= X86_START_KERNEL_MAP || segs[i].vaddr == segs[i].paddr || !segs[i].vaddr)
			continue;
		k->info.page_offset = segs[i].vaddr - segs[i].paddr; /* the last one: see dump-formats 2.4 */
		k->bases_known = true;
	}
}

struct vm_error *kernel_layout_init(struct kernel *k)
{
	struct kernel_info *in = &k->info;
	struct vm_error *err = k->vmci ? layout_from_vmcoreinfo(k) : layout_from_cr3(k);
	if (err)
		return err;
	k->paging.la57 = in->la57;
	k->paging.sme_mask = in->sme_mask;
	in->root_pgt &= X86_PTE_ADDR_MASK & ~in->sme_mask;
	if (k->vml) {
		err = check_banner(k);
		if (err)
			return err;
	}
	if (k->vmci) {
		int64_t t;
		if ((err = vmcoreinfo_osrelease(k->vmci, in->release, sizeof(in->release))) != NULL)
			vm_error_destroy(err);
		if (!in->build_id[0] && (err = vmcoreinfo_build_id(k->vmci, in->build_id, sizeof(in->build_id))) != NULL)
			vm_error_destroy(err);
		if ((err = vmcoreinfo_crashtime(k->vmci, &t)) == NULL)
			in->crash_time = (uint64_t)t;
		vm_error_destroy(err);
	}
	read_region_bases(k);
	if (k->vml) {
		k->bases_known = true;
		if (!in->crash_time)
			read_wall_time(k);
		read_uptime_from_jiffies(k);
	} else {
		page_offset_from_segments(k);
	}
	read_utsname(k);
	const struct dump_desc *d = dump_describe(k->dump);
	if (!in->machine[0])
		snprintf(in->machine, sizeof(in->machine), "%s", d->utsname_machine[0] ? d->utsname_machine : "x86_64");
	if (!in->release[0])
		snprintf(in->release, sizeof(in->release), "%s", d->utsname_release);
	return NULL;
}
