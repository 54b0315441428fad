/*
 * ELF vmcores: /proc/vmcore as saved by kdump, makedumpfile -E (excluded runs show as
 * p_filesz < p_memsz), QEMU dump-guest-memory (p_vaddr == p_paddr, PN_XNUM for many segments).
 * Physical addresses come from p_paddr; PT_LOADs may overlap (kernel text and the direct map
 * describe the same RAM), so a lookup prefers any segment that holds data for the address.
 */
#include "dump_priv.h"

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmcoreinfo.h"

#define ELF_INCOMPLETE_FLAG 0x1   /* makedumpfile's DUMP_ELF_INCOMPLETE in e_flags */
#define MAX_NOTES_SIZE (64u << 20)

static int cmp_load(const void *a, const void *b)
{
	const struct elf_load *x = a, *y = b;
	if (x->paddr != y->paddr)
		return x->paddr < y->paddr ? -1 : 1;
	return x->memsz < y->memsz ? -1 : x->memsz > y->memsz;
}

static struct vm_error *read_phdrs(struct dump_source *src, const Elf64_Ehdr *eh, Elf64_Phdr **ret,
				   uint64_t *nret)
{
	uint64_t phnum = eh->e_phnum;
	if (phnum == PN_XNUM) {
		Elf64_Shdr sh;
		if (eh->e_shoff == 0 || eh->e_shentsize != sizeof(sh))
			return vm_error_create(VM_ERR_FORMAT, 0,
					       "%s: e_phnum is PN_XNUM but there is no section header 0 to hold the count",
					       src->path);
		struct vm_error *err = source_read(src, eh->e_shoff, &sh, sizeof(sh));
		if (err)
			return vm_error_prefix(err, "%s: section header 0 (PN_XNUM)", src->path);
		phnum = sh.sh_info;
	}
	if (phnum == 0)
		return vm_error_create(VM_ERR_FORMAT, 0, "%s: no program headers", src->path);
	if (eh->e_phentsize != sizeof(Elf64_Phdr))
		return vm_error_create(VM_ERR_FORMAT, 0, "%s: e_phentsize is %u, expected %zu", src->path,
				       eh->e_phentsize, sizeof(Elf64_Phdr));
	if (eh->e_phoff > src->size || phnum > (src->size - eh->e_phoff) / sizeof(Elf64_Phdr) ||
	    !source_can_hold(src, phnum * sizeof(Elf64_Phdr)))
		return vm_error_create(VM_ERR_FORMAT, eh->e_phoff,
				       "%s: %llu program headers at %#llx run past the end of the file",
				       src->path, (unsigned long long)phnum, (unsigned long long)eh->e_phoff);
	Elf64_Phdr *ph = malloc(phnum * sizeof(*ph));
	if (!ph)
		return &vm_error_nomem;
	struct vm_error *err = source_read(src, eh->e_phoff, ph, phnum * sizeof(*ph));
	if (err) {
		free(ph);
		return err;
	}
	*ret = ph;
	*nret = phnum;
	return NULL;
}

static struct vm_error *append_notes(struct dump *d, const Elf64_Phdr *p)
{
	struct dump_source *src = &d->elf_src;
	if (p->p_filesz == 0)
		return NULL;
	if (p->p_filesz > MAX_NOTES_SIZE || d->raw_notes_len + p->p_filesz > MAX_NOTES_SIZE ||
	    !source_can_hold(src, p->p_filesz))
		return vm_error_create(VM_ERR_FORMAT, p->p_offset, "%s: PT_NOTE at %#llx is %llu bytes, too large",
				       src->path, (unsigned long long)p->p_offset,
				       (unsigned long long)p->p_filesz);
	uint8_t *n = realloc(d->raw_notes, d->raw_notes_len + p->p_filesz);
	if (!n)
		return &vm_error_nomem;
	d->raw_notes = n;
	struct vm_error *err = source_read(src, p->p_offset, n + d->raw_notes_len, p->p_filesz);
	if (err)
		return vm_error_prefix(err, "%s: PT_NOTE", src->path);
	d->raw_notes_len += p->p_filesz;
	return NULL;
}

struct vm_error *elfdump_open(struct dump *d, const char *path, const struct dump_options *o)
{
	(void)o;
	struct dump_source *src = &d->elf_src;
	struct vm_error *err = source_open(path, src);
	if (err)
		return err;
	Elf64_Ehdr eh;
	if (src->size < sizeof(eh))
		return vm_error_create(VM_ERR_FORMAT, 0, "%s: too short for an ELF header", path);
	err = source_read(src, 0, &eh, sizeof(eh));
	if (err)
		return err;
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
		return vm_error_create(VM_ERR_UNSUPPORTED, 4, "%s: only 64-bit little-endian ELF dumps are read", path);
	if (eh.e_type != ET_CORE)
		return vm_error_create(VM_ERR_FORMAT, 16, "%s: ELF type %u is not ET_CORE", path, eh.e_type);
	if (eh.e_machine != EM_X86_64)
		return vm_error_create(VM_ERR_UNSUPPORTED, 18, "%s: ELF machine %u is not x86_64", path,
				       eh.e_machine);
	Elf64_Phdr *ph = NULL;
	uint64_t phnum = 0;
	err = read_phdrs(src, &eh, &ph, &phnum);
	if (err)
		return err;
	uint64_t nloads = 0;
	for (uint64_t i = 0; i < phnum; i++)
		nloads += ph[i].p_type == PT_LOAD;
	struct elf_state *e = &d->elf;
	e->loads = malloc((nloads ? nloads : 1) * sizeof(*e->loads));
	e->max_end = malloc((nloads ? nloads : 1) * sizeof(*e->max_end));
	d->segments = malloc((nloads ? nloads : 1) * sizeof(*d->segments));
	if (!e->loads || !e->max_end || !d->segments) {
		free(ph);
		return &vm_error_nomem;
	}
	for (uint64_t i = 0; i < phnum && !err; i++) {
		const Elf64_Phdr *p = &ph[i];
		if (p->p_type == PT_NOTE) {
			err = append_notes(d, p);
		} else if (p->p_type == PT_LOAD) {
			if (p->p_filesz > p->p_memsz || p->p_paddr > UINT64_MAX - p->p_memsz ||
			    (p->p_filesz && p->p_offset > UINT64_MAX - p->p_filesz)) {
				err = vm_error_create(VM_ERR_FORMAT, eh.e_phoff + i * sizeof(*p),
						      "%s: PT_LOAD %llu has p_filesz %#llx, p_memsz %#llx, p_paddr %#llx: inconsistent",
						      path, (unsigned long long)i, (unsigned long long)p->p_filesz,
						      (unsigned long long)p->p_memsz, (unsigned long long)p->p_paddr);
				break;
			}
			d->segments[d->nsegments++] = (struct dump_segment){ p->p_vaddr, p->p_paddr,
									     p->p_filesz, p->p_memsz };
			if (p->p_memsz)
				e->loads[e->nloads++] = (struct elf_load){ p->p_paddr, p->p_memsz, p->p_filesz,
									   p->p_offset };
		}
	}
	free(ph);
	if (err)
		return err;
	qsort(e->loads, e->nloads, sizeof(*e->loads), cmp_load);
	uint64_t end = 0;
	for (size_t i = 0; i < e->nloads; i++) {
		uint64_t this_end = e->loads[i].paddr + e->loads[i].memsz;
		end = this_end > end ? this_end : end;
		e->max_end[i] = end;
	}
	d->desc.format = src->flat ? "flattened-elf" : "elf";
	d->desc.page_size = 4096;
	d->desc.incomplete = eh.e_flags & ELF_INCOMPLETE_FLAG;
	d->desc.max_pfn = (end + d->desc.page_size - 1) / d->desc.page_size;
	uint64_t nfiltered = 0;
	for (size_t i = 0; i < e->nloads; i++)
		nfiltered += e->loads[i].filesz < e->loads[i].memsz;
	snprintf(d->desc.description, sizeof(d->desc.description), "%sELF vmcore, %zu PT_LOADs%s%s",
		 src->flat ? "flattened " : "", e->nloads, nfiltered ? ", some pages excluded" : "",
		 d->desc.incomplete ? ", incomplete" : "");
	return NULL;
}

void elfdump_close(struct dump *d)
{
	source_close(&d->elf_src);
	free(d->elf.loads);
	free(d->elf.max_end);
}

enum elf_where { IN_DATA, IN_EXCLUDED, IN_HOLE, IN_BEYOND };

/* Index of the first load (sorted by paddr) that starts above paddr. */
static size_t first_load_above(const struct elf_state *e, uint64_t paddr)
{
	size_t lo = 0, hi = e->nloads;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (e->loads[mid].paddr <= paddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Classify paddr; for IN_DATA, *load is a segment holding its data. */
static enum elf_where locate(const struct elf_state *e, uint64_t paddr, const struct elf_load **load)
{
	size_t lo = first_load_above(e, paddr);
	if (e->nloads == 0 || paddr >= e->max_end[e->nloads - 1])
		return IN_BEYOND;
	enum elf_where w = IN_HOLE;
	for (size_t i = lo; i-- > 0 && e->max_end[i] > paddr;) {
		const struct elf_load *l = &e->loads[i];
		if (paddr - l->paddr >= l->memsz)
			continue;
		if (paddr - l->paddr < l->filesz) {
			*load = l;
			return IN_DATA;
		}
		w = IN_EXCLUDED;
	}
	return w;
}

/* Where the classification of paddr may change next: the next start, or an end of a covering load. */
static uint64_t next_boundary(const struct elf_state *e, uint64_t paddr)
{
	size_t lo = first_load_above(e, paddr);
	uint64_t best = lo < e->nloads ? e->loads[lo].paddr : UINT64_MAX;
	for (size_t i = lo; i-- > 0 && e->max_end[i] > paddr;) {
		const struct elf_load *l = &e->loads[i];
		uint64_t ends[2] = { l->paddr + l->filesz, l->paddr + l->memsz };
		for (int c = 0; c < 2; c++)
			if (ends[c] > paddr && ends[c] < best)
				best = ends[c];
	}
	return best;
}

/*
 * Whether some PT_LOAD holds data inside the page at `page`: segments need not be page-aligned
 * (e820 ranges such as 0x1000-0x9fbff), and the uncovered rest of such a page reads as zeros.
 */
static bool page_has_data(const struct elf_state *e, uint64_t page, uint64_t page_size)
{
	uint64_t page_end = page + page_size;
	size_t lo = 0, hi = e->nloads;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (e->loads[mid].paddr < page_end)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i-- > 0 && e->max_end[i] > page;) {
		const struct elf_load *l = &e->loads[i];
		if (l->filesz && l->paddr + l->filesz > page)
			return true;
	}
	return false;
}

static struct vm_error *where_error(struct dump *d, enum vm_errcode code, uint64_t paddr)
{
	uint64_t page = paddr & ~(uint64_t)(d->desc.page_size - 1);
	const char *why = code == VM_ERR_EXCLUDED ? "was excluded from the dump (p_filesz < p_memsz)"
			: code == VM_ERR_HOLE ? "is in a memory hole (no PT_LOAD covers it)"
			: code == VM_ERR_INCOMPLETE ? "is past the end of the file (incomplete dump)"
			: "is beyond the end of physical memory in the dump";
	return vm_error_create(code, page, "%s: physical address %#llx %s", d->elf_src.path,
			       (unsigned long long)paddr, why);
}

/*
 * Walk [paddr, paddr + len) as a read would, copying into buf unless it is NULL (then only
 * classify, without reading). Returns 0, or the reason the byte at *fail cannot be read; an I/O
 * error is returned in *ioerr with code VM_ERR_OS.
 */
static enum vm_errcode elf_walk(struct dump *d, uint64_t paddr, uint8_t *out, size_t len, bool zero_excluded,
				uint64_t *fail, struct vm_error **ioerr)
{
	uint64_t ps = d->desc.page_size;
	while (len) {
		const struct elf_load *l;
		enum elf_where w = locate(&d->elf, paddr, &l);
		uint64_t chunk;
		if (w == IN_DATA) {
			uint64_t off = l->offset + (paddr - l->paddr);
			chunk = l->paddr + l->filesz - paddr;
			if (chunk > len)
				chunk = len;
			if (off >= d->elf_src.size) {
				if (!zero_excluded) {
					*fail = paddr;
					return VM_ERR_INCOMPLETE;
				}
				if (out)
					memset(out, 0, chunk);
			} else {
				uint64_t have = d->elf_src.size - off < chunk ? d->elf_src.size - off : chunk;
				if (out && (*ioerr = source_read(&d->elf_src, off, out, have))) {
					*fail = paddr;
					return VM_ERR_OS;
				}
				chunk = have;
			}
		} else if ((w == IN_EXCLUDED && zero_excluded) ||
			   (w != IN_EXCLUDED && page_has_data(&d->elf, paddr & ~(ps - 1), ps))) {
			chunk = next_boundary(&d->elf, paddr) - paddr;
			if (w != IN_EXCLUDED && chunk > ps - paddr % ps)
				chunk = ps - paddr % ps;
			if (chunk > len)
				chunk = len;
			if (out)
				memset(out, 0, chunk);
		} else {
			*fail = paddr;
			return w == IN_EXCLUDED ? VM_ERR_EXCLUDED : w == IN_HOLE ? VM_ERR_HOLE : VM_ERR_BEYOND;
		}
		if (out)
			out += chunk;
		paddr += chunk;
		len -= chunk;
	}
	return 0;
}

/* A page is readable when all of it is: data, or hole bytes beside data in the same page. */
enum vm_errcode elfdump_page_state(struct dump *d, uint64_t paddr)
{
	uint64_t ps = d->desc.page_size, page = paddr & ~(ps - 1), fail;
	struct vm_error *ioerr = NULL;
	if (page > UINT64_MAX - ps)
		return VM_ERR_BEYOND;
	return elf_walk(d, page, NULL, ps, false, &fail, &ioerr);
}

struct vm_error *elfdump_read(struct dump *d, uint64_t paddr, void *buf, size_t len, bool zero_excluded)
{
	uint64_t fail = 0;
	struct vm_error *ioerr = NULL;
	enum vm_errcode code = elf_walk(d, paddr, buf, len, zero_excluded, &fail, &ioerr);
	if (code == VM_ERR_OS)
		return ioerr;
	return code ? where_error(d, code, fail) : NULL;
}
