#include "symbols.h"

#include "bytes.h"
#include "growarray.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A type found in DWARF: name and the offset of its defining DIE. */
struct type_entry {
	char *name;
	Dwarf_Off die;
};

struct vmlinux {
	char *path;
	int fd;
	Elf *elf;
	Dwarf *dwarf; /* NULL when the file has no DWARF: member lookups then fail */
	char build_id[41];
	uint64_t percpu_start, percpu_end;

	/* ELF symbol table (read in place from the mapping): open-addressed hash of indices by name. */
	const Elf64_Sym *syms;
	const char *strtab;
	size_t strtab_size;
	size_t nsyms;
	uint32_t *hash; /* 0 = empty, else index + 1 */
	size_t hash_size;

	struct type_entry *types;
	size_t ntypes, types_cap;
};

static uint64_t hash_name(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static struct vm_error *elf_failure(const char *path, const char *what)
{
	return vm_error_create(VM_ERR_FORMAT, 0, "%s: %s: %s", path, what, elf_errmsg(-1));
}

static const char *sym_name(const struct vmlinux *v, const Elf64_Sym *sym)
{
	return sym->st_name < v->strtab_size ? v->strtab + sym->st_name : "";
}

static struct vm_error *load_symtab(struct vmlinux *v)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr shdr;
	size_t shstrndx;
	if (elf_getshdrstrndx(v->elf, &shstrndx) != 0)
		return elf_failure(v->path, "reading section names");
	while ((scn = elf_nextscn(v->elf, scn))) {
		if (!gelf_getshdr(scn, &shdr))
			return elf_failure(v->path, "reading section header");
		if (shdr.sh_type == SHT_SYMTAB) {
			Elf_Data *symdata = elf_getdata(scn, NULL);
			Elf_Data *strdata = elf_getdata(elf_getscn(v->elf, shdr.sh_link), NULL);
			if (!symdata || !strdata)
				return elf_failure(v->path, "reading .symtab");
			v->syms = symdata->d_buf;
			v->nsyms = symdata->d_size / sizeof(Elf64_Sym);
			v->strtab = strdata->d_buf;
			v->strtab_size = strdata->d_size;
		}
		const char *name = elf_strptr(v->elf, shstrndx, shdr.sh_name);
		if (name && strcmp(name, ".data..percpu") == 0) {
			v->percpu_start = shdr.sh_addr;
			v->percpu_end = shdr.sh_addr + shdr.sh_size;
		}
	}
	if (!v->syms || !v->strtab_size || v->strtab[v->strtab_size - 1] != 0)
		return vm_error_create(VM_ERR_FORMAT, 0, "%s: no usable .symtab (a stripped vmlinux?)", v->path);

	v->hash_size = 1;
	while (v->hash_size < v->nsyms * 2)
		v->hash_size <<= 1;
	v->hash = calloc(v->hash_size, sizeof(*v->hash));
	if (!v->hash)
		return &vm_error_nomem;
	for (size_t i = 1; i < v->nsyms; i++) {
		const Elf64_Sym *sym = &v->syms[i];
		int type = ELF64_ST_TYPE(sym->st_info);
		if (sym->st_name == 0 || sym->st_shndx == SHN_UNDEF || type == STT_SECTION || type == STT_FILE)
			continue;
		const char *name = sym_name(v, sym);
		if (!*name)
			continue;
		size_t slot = hash_name(name) & (v->hash_size - 1);
		for (;; slot = (slot + 1) & (v->hash_size - 1)) {
			if (!v->hash[slot]) {
				v->hash[slot] = (uint32_t)i + 1;
				break;
			}
			const Elf64_Sym *other = &v->syms[v->hash[slot] - 1];
			if (strcmp(sym_name(v, other), name) == 0) {
				/* Keep the global definition; static symbols of the same name are ambiguous. */
				if (ELF64_ST_BIND(other->st_info) == STB_LOCAL && ELF64_ST_BIND(sym->st_info) != STB_LOCAL)
					v->hash[slot] = (uint32_t)i + 1;
				break;
			}
		}
	}
	return NULL;
}

static void load_build_id(struct vmlinux *v)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr shdr;
	while ((scn = elf_nextscn(v->elf, scn))) {
		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_NOTE)
			continue;
		Elf_Data *data = elf_getdata(scn, NULL);
		if (!data)
			continue;
		size_t off = 0, name_off, desc_off;
		GElf_Nhdr nhdr;
		while ((off = gelf_getnote(data, off, &nhdr, &name_off, &desc_off)) > 0) {
			if (nhdr.n_type == NT_GNU_BUILD_ID && nhdr.n_namesz == 4 &&
			    memcmp((char *)data->d_buf + name_off, "GNU", 4) == 0 && nhdr.n_descsz <= 20) {
				const unsigned char *d = (const unsigned char *)data->d_buf + desc_off;
				for (size_t i = 0; i < nhdr.n_descsz; i++)
					snprintf(v->build_id + 2 * i, 3, "%02x", d[i]);
				return;
			}
		}
	}
}

struct vm_error *vmlinux_open(const char *path, struct vmlinux **ret)
{
	struct vmlinux *v = calloc(1, sizeof(*v));
	if (!v)
		return &vm_error_nomem;
	v->fd = -1;
	v->path = strdup(path);
	struct vm_error *err = NULL;
	if (!v->path) {
		err = &vm_error_nomem;
		goto fail;
	}
	elf_version(EV_CURRENT);
	v->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (v->fd < 0) {
		err = vm_error_errno(0, "%s: cannot open vmlinux", path);
		goto fail;
	}
	v->elf = elf_begin(v->fd, ELF_C_READ_MMAP, NULL);
	if (!v->elf || elf_kind(v->elf) != ELF_K_ELF) {
		err = vm_error_create(VM_ERR_FORMAT, 0, "%s: not an ELF file", path);
		goto fail;
	}
	GElf_Ehdr ehdr;
	if (!gelf_getehdr(v->elf, &ehdr) || ehdr.e_machine != EM_X86_64 || ehdr.e_ident[EI_CLASS] != ELFCLASS64) {
		err = vm_error_create(VM_ERR_UNSUPPORTED, 0, "%s: not an x86_64 ELF64 vmlinux", path);
		goto fail;
	}
	err = load_symtab(v);
	if (err)
		goto fail;
	load_build_id(v);
	v->dwarf = dwarf_begin_elf(v->elf, DWARF_C_READ, NULL);
	*ret = v;
	return NULL;
fail:
	vmlinux_close(v);
	return err;
}

void vmlinux_close(struct vmlinux *v)
{
	if (!v)
		return;
	if (v->dwarf)
		dwarf_end(v->dwarf);
	if (v->elf)
		elf_end(v->elf);
	if (v->fd >= 0)
		close(v->fd);
	for (size_t i = 0; i < v->ntypes; i++)
		free(v->types[i].name);
	free(v->types);
	free(v->hash);
	free(v->path);
	free(v);
}

const char *vmlinux_path(const struct vmlinux *v)
{
	return v->path;
}

const char *vmlinux_build_id(const struct vmlinux *v)
{
	return v->build_id;
}

struct vm_error *vmlinux_symbol(struct vmlinux *v, const char *name, uint64_t *addr)
{
	size_t slot = hash_name(name) & (v->hash_size - 1);
	for (; v->hash[slot]; slot = (slot + 1) & (v->hash_size - 1)) {
		const Elf64_Sym *sym = &v->syms[v->hash[slot] - 1];
		if (strcmp(sym_name(v, sym), name) == 0) {
			*addr = sym->st_value;
			return NULL;
		}
	}
	return vm_error_create(VM_ERR_NOT_FOUND, 0, "%s: no symbol %s", v->path, name);
}

bool vmlinux_is_percpu(const struct vmlinux *v, uint64_t addr)
{
	return v->percpu_end > v->percpu_start && addr >= v->percpu_start && addr < v->percpu_end;
}

/*
 * Where a few types are defined, as a speed hint only: their first definition otherwise lies deep in
 * the unit list. A miss falls back to the full scan.
 */
static const struct {
	const char *type, *unit_suffix;
} type_hints[] = {
	{ "inactive_task_frame", "arch/x86/kernel/process.c" },
	{ "rq", "kernel/sched/core.c" },
	{ "pcpu_hot", "arch/x86/kernel/cpu/common.c" },
	{ "timekeeper", "kernel/time/timekeeping.c" },
	{ "printk_ringbuffer", "kernel/printk/printk.c" },
	{ "prb_desc_ring", "kernel/printk/printk.c" },
	{ "prb_data_ring", "kernel/printk/printk.c" },
	{ "prb_desc", "kernel/printk/printk.c" },
	{ "prb_data_blk_lpos", "kernel/printk/printk.c" },
	{ "printk_info", "kernel/printk/printk.c" },
};

/*
 * Types whose first definition lies deep in the unit list, with a function of a unit that defines
 * them: the function's address finds that unit through .debug_aranges, without walking the units.
 */
static const struct {
	const char *type, *symbol;
} symbol_hints[] = {
	{ "kmem_cache", "kmem_cache_alloc" },
	{ "kmem_cache_cpu", "kmem_cache_alloc" },
	{ "kmem_cache_node", "kmem_cache_alloc" },
	{ "slab", "kmem_cache_alloc" },
};

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The first complete struct/union definition named `name` among the top-level DIEs of a unit. */
static bool scan_unit(Dwarf_Die *cu, const char *name, Dwarf_Die *found)
{
	Dwarf_Die die;
	if (dwarf_child(cu, &die) != 0)
		return false;
	do {
		int tag = dwarf_tag(&die);
		if (tag != DW_TAG_structure_type && tag != DW_TAG_union_type)
			continue;
		const char *n = dwarf_diename(&die);
		if (!n || strcmp(n, name) != 0 || dwarf_hasattr(&die, DW_AT_declaration))
			continue;
		*found = die;
		return true;
	} while (dwarf_siblingof(&die, &die) == 0);
	return false;
}

/*
 * Scan top-level DIEs for the first complete struct/union definition named `name`, in every unit
 * or only in units whose name ends with unit_suffix.
 */
static bool scan_for_type(struct vmlinux *v, const char *name, const char *unit_suffix, Dwarf_Die *found)
{
	Dwarf_Off off = 0, next;
	size_t hsize;
	while (dwarf_nextcu(v->dwarf, off, &next, &hsize, NULL, NULL, NULL) == 0) {
		Dwarf_Die cu;
		const char *unit_name;
		if (dwarf_offdie(v->dwarf, off + hsize, &cu) &&
		    (!unit_suffix || ((unit_name = dwarf_diename(&cu)) && ends_with(unit_name, unit_suffix))) &&
		    scan_unit(&cu, name, found))
			return true;
		off = next;
	}
	return false;
}

/*
 * .debug_info offset of the unit whose .debug_aranges set covers link address addr, read straight
 * from the section (libdw's dwarf_getaranges sorts every range of every unit first).
 */
static bool unit_of_address(struct vmlinux *v, uint64_t addr, Dwarf_Off *unit)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr shdr;
	size_t shstrndx;
	Elf_Data *data = NULL;
	if (elf_getshdrstrndx(v->elf, &shstrndx) != 0)
		return false;
	while (!data && (scn = elf_nextscn(v->elf, scn))) {
		const char *name;
		if (gelf_getshdr(scn, &shdr) && (name = elf_strptr(v->elf, shstrndx, shdr.sh_name)) &&
		    strcmp(name, ".debug_aranges") == 0 && shdr.sh_type == SHT_PROGBITS)
			data = elf_getdata(scn, NULL);
	}
	if (!data || !data->d_buf)
		return false;
	const uint8_t *p = data->d_buf, *end = p + data->d_size;
	while (end - p >= 16) {
		const uint8_t *set = p;
		uint64_t len = load_u32(p);
		size_t lsize = 4;
		if (len == 0xffffffffu) {
			len = load_u64(p + 4);
			lsize = 12;
		}
		if (len > (uint64_t)(end - p) - lsize)
			return false;
		const uint8_t *next = p + lsize + len, *q = p + lsize + 2; /* past unit_length and version */
		uint64_t info_off = lsize == 12 ? load_u64(q) : load_u32(q);
		q += lsize == 12 ? 8 : 4;
		if (next - q < 2 || q[0] != 8 || q[1] != 0) { /* 8-byte addresses, no segments */
			p = next;
			continue;
		}
		/* Tuples start at a multiple of their size (16) from the set's start. */
		for (q = set + ((size_t)(q + 2 - set) + 15) / 16 * 16; next - q >= 16; q += 16) {
			uint64_t start = load_u64(q), size = load_u64(q + 8);
			if (!start && !size)
				break;
			if (addr - start < size) {
				*unit = info_off;
				return true;
			}
		}
		p = next;
	}
	return false;
}

static struct vm_error *remember_type(struct vmlinux *v, const char *name, Dwarf_Off die)
{
	struct vm_error *err = grow_array(&v->types, &v->types_cap, v->ntypes + 1, sizeof(*v->types));
	if (err)
		return err;
	char *copy = strdup(name);
	if (!copy)
		return &vm_error_nomem;
	v->types[v->ntypes].name = copy;
	v->types[v->ntypes].die = die;
	v->ntypes++;
	return NULL;
}

static bool cached_type(struct vmlinux *v, const char *name, Dwarf_Die *die)
{
	for (size_t i = 0; i < v->ntypes; i++)
		if (strcmp(v->types[i].name, name) == 0)
			return dwarf_offdie(v->dwarf, v->types[i].die, die) != NULL;
	return false;
}

/*
 * The unit symbol_hints gives for `name`, scanned once for every type hinted to the same symbol:
 * the first such lookup caches them all, and the unit is not walked again for the others.
 */
static struct vm_error *scan_symbol_unit(struct vmlinux *v, const char *name)
{
	enum { NHINTS = sizeof(symbol_hints) / sizeof(symbol_hints[0]) };
	const char *symbol = NULL;
	for (size_t i = 0; i < NHINTS && !symbol; i++)
		if (strcmp(symbol_hints[i].type, name) == 0)
			symbol = symbol_hints[i].symbol;
	uint64_t addr;
	Dwarf_Off unit, next;
	size_t hsize;
	Dwarf_Die cu, die;
	struct vm_error *err;
	if (!symbol)
		return NULL;
	if ((err = vmlinux_symbol(v, symbol, &addr))) {
		vm_error_destroy(err);
		return NULL;
	}
	if (!unit_of_address(v, addr, &unit) || dwarf_nextcu(v->dwarf, unit, &next, &hsize, NULL, NULL, NULL) != 0 ||
	    !dwarf_offdie(v->dwarf, unit + hsize, &cu) || dwarf_child(&cu, &die) != 0)
		return NULL;
	bool wanted[NHINTS];
	size_t left = 0;
	for (size_t i = 0; i < NHINTS; i++) {
		Dwarf_Die cached;
		wanted[i] = strcmp(symbol_hints[i].symbol, symbol) == 0 && !cached_type(v, symbol_hints[i].type, &cached);
		left += wanted[i];
	}
	do {
		int tag = dwarf_tag(&die);
		const char *n;
		if ((tag != DW_TAG_structure_type && tag != DW_TAG_union_type) || !(n = dwarf_diename(&die)) ||
		    dwarf_hasattr(&die, DW_AT_declaration))
			continue;
		for (size_t i = 0; i < NHINTS; i++) {
			if (!wanted[i] || strcmp(symbol_hints[i].type, n) != 0)
				continue;
			wanted[i] = false;
			left--;
			if ((err = remember_type(v, n, dwarf_dieoffset(&die))))
				return err;
		}
	} while (left && dwarf_siblingof(&die, &die) == 0);
	return NULL;
}

static struct vm_error *find_type(struct vmlinux *v, const char *name, Dwarf_Die *die)
{
	if (!v->dwarf)
		return vm_error_create(VM_ERR_NOT_FOUND, 0, "%s: no DWARF debug info (need struct %s)", v->path, name);
	if (cached_type(v, name, die))
		return NULL;
	struct vm_error *err = scan_symbol_unit(v, name);
	if (err)
		return err;
	if (cached_type(v, name, die))
		return NULL;
	bool found = false;
	for (size_t i = 0; i < sizeof(type_hints) / sizeof(type_hints[0]) && !found; i++)
		if (strcmp(type_hints[i].type, name) == 0)
			found = scan_for_type(v, name, type_hints[i].unit_suffix, die);
	if (!found && !scan_for_type(v, name, NULL, die))
		return vm_error_create(VM_ERR_NOT_FOUND, 0, "%s: no definition of struct %s in DWARF", v->path, name);
	return remember_type(v, name, dwarf_dieoffset(die));
}

/* Follow typedefs and qualifiers to the underlying type. */
static bool strip_type(Dwarf_Die *die)
{
	for (int guard = 0; guard < 32; guard++) {
		int tag = dwarf_tag(die);
		if (tag != DW_TAG_typedef && tag != DW_TAG_const_type && tag != DW_TAG_volatile_type &&
		    tag != DW_TAG_restrict_type && tag != DW_TAG_atomic_type)
			return true;
		Dwarf_Attribute attr;
		if (!dwarf_attr(die, DW_AT_type, &attr) || !dwarf_formref_die(&attr, die))
			return false;
	}
	return false;
}

static bool member_offset(Dwarf_Die *member, uint64_t *off)
{
	Dwarf_Attribute attr;
	Dwarf_Word w;
	if (!dwarf_attr(member, DW_AT_data_member_location, &attr)) {
		*off = 0; /* union members */
		return true;
	}
	if (dwarf_formudata(&attr, &w) != 0)
		return false;
	*off = w;
	return true;
}

/* Find member `name` in aggregate `agg`, descending into anonymous members. */
static bool find_member(Dwarf_Die *agg, const char *name, size_t namelen, uint64_t *off, Dwarf_Die *type,
			int depth)
{
	Dwarf_Die child;
	if (depth > 8 || dwarf_child(agg, &child) != 0)
		return false;
	do {
		if (dwarf_tag(&child) != DW_TAG_member)
			continue;
		const char *n = dwarf_diename(&child);
		Dwarf_Attribute attr;
		Dwarf_Die mtype;
		uint64_t moff;
		if (!dwarf_attr(&child, DW_AT_type, &attr) || !dwarf_formref_die(&attr, &mtype) ||
		    !member_offset(&child, &moff))
			continue;
		if (n && strlen(n) == namelen && strncmp(n, name, namelen) == 0) {
			*off = moff;
			*type = mtype;
			return true;
		}
		if (!n && strip_type(&mtype)) {
			uint64_t inner;
			if (find_member(&mtype, name, namelen, &inner, type, depth + 1)) {
				*off = moff + inner;
				return true;
			}
		}
	} while (dwarf_siblingof(&child, &child) == 0);
	return false;
}

struct vm_error *vmlinux_member(struct vmlinux *v, const char *type, const char *path, uint64_t *offset,
				uint64_t *size)
{
	Dwarf_Die die;
	struct vm_error *err = find_type(v, type, &die);
	if (err)
		return err;
	uint64_t total = 0;
	const char *p = path;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		uint64_t off;
		Dwarf_Die mtype;
		if (!strip_type(&die) || !find_member(&die, p, len, &off, &mtype, 0))
			return vm_error_create(VM_ERR_NOT_FOUND, 0, "%s: struct %s has no member %s", v->path, type, path);
		total += off;
		die = mtype;
		if (!dot)
			break;
		p = dot + 1;
	}
	*offset = total;
	if (size) {
		Dwarf_Word sz;
		if (!strip_type(&die))
			return vm_error_create(VM_ERR_NOT_FOUND, 0, "%s: type of %s.%s unknown", v->path, type, path);
		if (dwarf_tag(&die) == DW_TAG_pointer_type)
			sz = 8;
		else if (dwarf_aggregate_size(&die, &sz) != 0)
			return vm_error_create(VM_ERR_NOT_FOUND, 0, "%s: size of %s.%s unknown", v->path, type, path);
		*size = sz;
	}
	return NULL;
}

struct vm_error *vmlinux_type_size(struct vmlinux *v, const char *type, uint64_t *size)
{
	Dwarf_Die die;
	struct vm_error *err = find_type(v, type, &die);
	if (err)
		return err;
	int sz = dwarf_bytesize(&die);
	if (sz < 0)
		return vm_error_create(VM_ERR_NOT_FOUND, 0, "%s: struct %s has no size", v->path, type);
	*size = (uint64_t)sz;
	return NULL;
}
