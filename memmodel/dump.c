/* Opening a dump: detect the format of each file, dispatch to its reader, and parse the notes. */
#include "dump_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmcoreinfo.h"

struct vm_error *source_open(const char *path, struct dump_source *src)
{
	memset(src, 0, sizeof(*src));
	src->fd = -1;
	src->path = strdup(path);
	if (!src->path)
		return &vm_error_nomem;
	src->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (src->fd < 0)
		return vm_error_errno(0, "%s: cannot open", path);
	struct stat st;
	if (fstat(src->fd, &st) < 0)
		return vm_error_errno(0, "%s: cannot stat", path);
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return vm_error_create(VM_ERR_INVALID, 0, "%s: not a regular file", path);
	src->file_size = (uint64_t)st.st_size;
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(src->fd, 0, SEEK_END);
		if (end < 0)
			return vm_error_errno(0, "%s: cannot find its size", path);
		src->file_size = (uint64_t)end;
	}
	src->size = src->file_size;
	uint8_t head[32];
	ssize_t got = pread(src->fd, head, sizeof(head), 0);
	if (got < 0)
		return vm_error_errno(0, "%s: read at 0", path);
	if (flat_detect(head, (size_t)got)) {
		struct vm_error *err = flat_index_build(src->fd, path, src->file_size, &src->flat);
		if (err)
			return err;
		src->size = src->flat->size;
	}
	return NULL;
}

void source_close(struct dump_source *src)
{
	if (src->fd >= 0)
		close(src->fd);
	flat_index_free(src->flat);
	free(src->path);
	memset(src, 0, sizeof(*src));
	src->fd = -1;
}

static struct vm_error *pread_exact(struct dump_source *src, uint64_t off, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t got = pread(src->fd, p, len, (off_t)off);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return vm_error_errno(off, "%s: read of %zu bytes at %#llx", src->path, len,
					      (unsigned long long)off);
		}
		if (got == 0)
			return vm_error_create(VM_ERR_FORMAT, off, "%s: file ends before offset %#llx",
					       src->path, (unsigned long long)off);
		p += got;
		off += (uint64_t)got;
		len -= (size_t)got;
	}
	return NULL;
}

struct vm_error *source_read(struct dump_source *src, uint64_t off, void *buf, size_t len)
{
	if (off > src->size || len > src->size - off)
		return vm_error_create(VM_ERR_FORMAT, off,
				       "%s: %zu bytes at offset %#llx run past the end of the dump data (%#llx)",
				       src->path, len, (unsigned long long)off, (unsigned long long)src->size);
	if (!src->flat)
		return pread_exact(src, off, buf, len);
	const struct flat_index *idx = src->flat;
	uint8_t *p = buf;
	/* Binary search for the last extent starting at or before off. */
	size_t lo = 0, hi = idx->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (idx->ext[mid].target <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t i = lo ? lo - 1 : 0;
	while (len) {
		while (i < idx->n && idx->ext[i].target + idx->ext[i].len <= off)
			i++;
		uint64_t chunk;
		if (i < idx->n && idx->ext[i].target <= off) {
			const struct flat_extent *e = &idx->ext[i];
			chunk = e->target + e->len - off;
			if (chunk > len)
				chunk = len;
			struct vm_error *err = pread_exact(src, e->file_off + (off - e->target), p, chunk);
			if (err)
				return err;
		} else {
			chunk = (i < idx->n ? idx->ext[i].target : src->size) - off;
			if (chunk > len)
				chunk = len;
			memset(p, 0, chunk);
		}
		p += chunk;
		off += chunk;
		len -= chunk;
	}
	return NULL;
}

const char *dump_compression_name(uint32_t flags)
{
	if (flags & DUMP_DH_COMPRESSED_ZSTD)
		return "zstd";
	if (flags & DUMP_DH_COMPRESSED_SNAPPY)
		return "snappy";
	if (flags & DUMP_DH_COMPRESSED_LZO)
		return "lzo";
	if (flags & DUMP_DH_COMPRESSED_ZLIB)
		return "zlib";
	return "none";
}

static struct vm_error *load_notes(struct dump *d)
{
	if (!d->raw_notes)
		return NULL;
	const char *where = d->kind == DUMP_KIND_ELF ? d->elf_src.path : d->kd.files[0].src.path;
	return notes_parse(d->raw_notes, d->raw_notes_len, where, 0, &d->notes);
}

struct vm_error *dump_open(const char *const *paths, size_t npaths, const struct dump_options *opts,
			   struct dump **ret)
{
	static const struct dump_options no_opts;
	if (npaths == 0)
		return vm_error_create(VM_ERR_INVALID, 0, "no dump file given");
	if (!opts)
		opts = &no_opts;
	struct dump *d = calloc(1, sizeof(*d));
	if (!d)
		return &vm_error_nomem;
	d->elf_src.fd = -1;
	d->desc.header_version = -1;
	d->desc.dump_level = -1;
	d->desc.nr_cpus = -1;
	d->desc.nfiles = npaths;

	/* Sniff the first file; a flat header hides the real signature, so look through it. */
	struct dump_source probe;
	struct vm_error *err = source_open(paths[0], &probe);
	uint8_t magic[8] = { 0 };
	if (!err && probe.size >= sizeof(magic))
		err = source_read(&probe, 0, magic, sizeof(magic));
	source_close(&probe);
	if (err)
		goto fail;
	if (memcmp(magic, "\177ELF", 4) == 0) {
		if (npaths > 1) {
			err = vm_error_create(VM_ERR_INVALID, 0, "%s: an ELF dump is one file, but %zu were given",
					      paths[0], npaths);
			goto fail;
		}
		err = elfdump_open(d, paths[0], opts);
	} else if (memcmp(magic, "KDUMP   ", 8) == 0 || memcmp(magic, "DISKDUMP", 8) == 0) {
		d->kind = DUMP_KIND_KDUMP;
		err = kdump_open(d, paths, npaths, opts);
	} else {
		err = vm_error_create(VM_ERR_FORMAT, 0,
				      "%s: not a crash dump (no ELF, KDUMP, DISKDUMP or makedumpfile signature)",
				      paths[0]);
	}
	if (err)
		goto fail;
	err = load_notes(d);
	if (err)
		goto fail;
	if (d->desc.nr_cpus < 0 && d->notes.ncpus)
		d->desc.nr_cpus = (int)d->notes.ncpus;
	if (!d->desc.utsname_release[0] && d->notes.vmcoreinfo) {
		struct vm_error *e = vmcoreinfo_osrelease(d->notes.vmcoreinfo, d->desc.utsname_release,
							  sizeof(d->desc.utsname_release));
		vm_error_destroy(e);
	}
	*ret = d;
	return NULL;
fail:
	dump_close(d);
	return err;
}

void dump_close(struct dump *d)
{
	if (!d)
		return;
	if (d->kind == DUMP_KIND_ELF)
		elfdump_close(d);
	else
		kdump_close(d);
	notes_free(&d->notes);
	free(d->raw_notes);
	free(d->segments);
	free(d);
}

const struct dump_desc *dump_describe(const struct dump *d)
{
	return &d->desc;
}

enum vm_errcode dump_page_state(struct dump *d, uint64_t paddr)
{
	if (d->kind == DUMP_KIND_ELF)
		return elfdump_page_state(d, paddr);
	return kdump_page_state(d, paddr / d->desc.page_size);
}

struct vm_error *dump_read_phys(struct dump *d, uint64_t paddr, void *buf, size_t len, bool zero_excluded)
{
	if (len && paddr > UINT64_MAX - (len - 1))
		return vm_error_create(VM_ERR_BEYOND, paddr, "read of %zu bytes at %#llx wraps around",
				       len, (unsigned long long)paddr);
	if (d->kind == DUMP_KIND_ELF)
		return elfdump_read(d, paddr, buf, len, zero_excluded);
	uint8_t *out = buf;
	uint32_t ps = d->desc.page_size;
	while (len) {
		uint64_t pfn = paddr / ps, in = paddr % ps;
		size_t chunk = ps - in < len ? ps - in : len;
		const uint8_t *page;
		struct vm_error *err = kdump_page(d, pfn, &page);
		if (err) {
			if (!zero_excluded || (err->code != VM_ERR_EXCLUDED && err->code != VM_ERR_INCOMPLETE))
				return err;
			vm_error_destroy(err);
			memset(out, 0, chunk);
		} else {
			memcpy(out, page + in, chunk);
		}
		out += chunk;
		paddr += chunk;
		len -= chunk;
	}
	return NULL;
}

const char *dump_vmcoreinfo(const struct dump *d)
{
	return d->notes.vmcoreinfo;
}

size_t dump_cpu_notes(const struct dump *d, const struct dump_cpu_note **notes)
{
	*notes = d->notes.cpus;
	return d->notes.ncpus;
}

size_t dump_segments(const struct dump *d, const struct dump_segment **segs)
{
	*segs = d->segments;
	return d->nsegments;
}

const void *dump_notes_raw(const struct dump *d, size_t *len)
{
	*len = d->raw_notes_len;
	return d->raw_notes;
}
