/*
 * Conversion to kdump-compressed v6. Layout as makedumpfile writes it: header (block 0), sub
 * header + note copy (block 1...), 1st and 2nd bitmaps each padded to whole blocks, one page
 * descriptor per set bit of the 2nd bitmap, then page data (the shared zero page first).
 */
#include "convert.h"

#include <errno.h>
#include <fcntl.h>
#include <lzo/lzo1x.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "dump_priv.h"
#include "vmcoreinfo.h"

#define HEADER_SIZE 464
#define SUB_HEADER_SIZE 104
#define PAGE_DESC_SIZE 24
#define WBUF_SIZE (1u << 20)
#define START_KERNEL_MAP 0xffffffff80000000ull

struct wbuf {
	int fd;
	const char *path;
	uint64_t pos; /* file offset of buf[0] */
	size_t used;
	uint8_t *buf;
};

static struct vm_error *wbuf_flush(struct wbuf *w)
{
	size_t done = 0;
	while (done < w->used) {
		ssize_t n = pwrite(w->fd, w->buf + done, w->used - done, (off_t)(w->pos + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return vm_error_errno(w->pos + done, "%s: write at %#llx", w->path,
					      (unsigned long long)(w->pos + done));
		}
		done += (size_t)n;
	}
	w->pos += w->used;
	w->used = 0;
	return NULL;
}

static struct vm_error *wbuf_put(struct wbuf *w, const void *p, size_t len)
{
	const uint8_t *s = p;
	while (len) {
		size_t n = WBUF_SIZE - w->used < len ? WBUF_SIZE - w->used : len;
		memcpy(w->buf + w->used, s, n);
		w->used += n;
		s += n;
		len -= n;
		if (w->used == WBUF_SIZE) {
			struct vm_error *err = wbuf_flush(w);
			if (err)
				return err;
		}
	}
	return NULL;
}

static struct vm_error *pwrite_all(int fd, const char *path, const void *p, size_t len, uint64_t off)
{
	struct wbuf w = { fd, path, off, len, (uint8_t *)p };
	return wbuf_flush(&w);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

struct vm_error *convert_compression_parse(const char *name, enum convert_compression *ret)
{
	static const char *const names[] = { "none", "zlib", "lzo", "snappy", "zstd" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i]) == 0) {
			*ret = (enum convert_compression)i;
			return NULL;
		}
	}
	return vm_error_create(VM_ERR_INVALID, 0, "unknown compression '%s' (none, zlib, lzo, snappy, zstd)", name);
}

static const uint32_t compression_flag[] = {
	[CONVERT_NONE] = 0,
	[CONVERT_ZLIB] = DUMP_DH_COMPRESSED_ZLIB,
	[CONVERT_LZO] = DUMP_DH_COMPRESSED_LZO,
	[CONVERT_SNAPPY] = DUMP_DH_COMPRESSED_SNAPPY,
	[CONVERT_ZSTD] = DUMP_DH_COMPRESSED_ZSTD,
};

struct compressor {
	enum convert_compression kind;
	uint8_t *out;
	size_t out_cap;
	void *lzo_work;
	ZSTD_CCtx *zstd;
};

static struct vm_error *compressor_init(struct compressor *c, enum convert_compression kind, size_t ps)
{
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	size_t bound = ps + ps / 16 + 64 + 3; /* lzo's worst case, the largest of the five */
	size_t zb = compressBound(ps), sb = snappy_max_compressed_length(ps), tb = ZSTD_compressBound(ps);
	bound = zb > bound ? zb : bound;
	bound = sb > bound ? sb : bound;
	bound = tb > bound ? tb : bound;
	c->out_cap = bound;
	c->out = malloc(bound);
	if (!c->out)
		return &vm_error_nomem;
	if (kind == CONVERT_LZO) {
		if (lzo_init() != LZO_E_OK)
			return vm_error_create(VM_ERR_UNSUPPORTED, 0, "lzo_init failed");
		c->lzo_work = malloc(LZO1X_1_MEM_COMPRESS);
		if (!c->lzo_work)
			return &vm_error_nomem;
	} else if (kind == CONVERT_ZSTD) {
		c->zstd = ZSTD_createCCtx();
		if (!c->zstd)
			return &vm_error_nomem;
	}
	return NULL;
}

static void compressor_fini(struct compressor *c)
{
	free(c->out);
	free(c->lzo_work);
	ZSTD_freeCCtx(c->zstd);
}

/* Compressed size in c->out, or 0 when the page should be stored raw. */
static size_t compress_page(struct compressor *c, const uint8_t *page, size_t ps)
{
	size_t n = 0;
	switch (c->kind) {
	case CONVERT_NONE:
		return 0;
	case CONVERT_ZLIB: {
		uLongf len = c->out_cap;
		if (compress2(c->out, &len, page, ps, Z_BEST_SPEED) == Z_OK)
			n = len;
		break;
	}
	case CONVERT_LZO: {
		lzo_uint len = c->out_cap;
		if (lzo1x_1_compress(page, ps, c->out, &len, c->lzo_work) == LZO_E_OK)
			n = len;
		break;
	}
	case CONVERT_SNAPPY: {
		size_t len = c->out_cap;
		if (snappy_compress((const char *)page, ps, (char *)c->out, &len) == SNAPPY_OK)
			n = len;
		break;
	}
	case CONVERT_ZSTD: {
		size_t len = ZSTD_compressCCtx(c->zstd, c->out, c->out_cap, page, ps, 1);
		if (!ZSTD_isError(len))
			n = len;
		break;
	}
	}
	return n < ps ? n : 0;
}

static bool is_zero_page(const uint8_t *p, size_t n)
{
	static const uint8_t zero[64];
	for (size_t i = 0; i < n; i += sizeof(zero))
		if (memcmp(p + i, zero, n - i < sizeof(zero) ? n - i : sizeof(zero)))
			return false;
	return true;
}

static bool same_file(int fd, const struct stat *out)
{
	struct stat st;
	return fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == out->st_dev && st.st_ino == out->st_ino;
}

static struct vm_error *refuse_input_as_output(struct dump *in, const char *out_path)
{
	struct stat st;
	if (stat(out_path, &st) < 0)
		return NULL;
	bool hit = in->kind == DUMP_KIND_ELF && same_file(in->elf_src.fd, &st);
	for (size_t i = 0; in->kind == DUMP_KIND_KDUMP && i < in->kd.nfiles; i++)
		hit |= same_file(in->kd.files[i].src.fd, &st);
	return hit ? vm_error_create(VM_ERR_INVALID, 0, "%s is an input file; refusing to overwrite it", out_path)
		   : NULL;
}

/* phys_base: VMCOREINFO NUMBER(phys_base) (decimal), else the input header, else a ktext PT_LOAD. */
static uint64_t find_phys_base(struct dump *in)
{
	int64_t v;
	struct vm_error *err = vmcoreinfo_number(dump_vmcoreinfo(in), "phys_base", &v);
	if (!err)
		return (uint64_t)v;
	vm_error_destroy(err);
	if (in->kind == DUMP_KIND_KDUMP && in->desc.has_phys_base)
		return in->desc.phys_base;
	for (size_t i = 0; i < in->nsegments; i++) {
		const struct dump_segment *s = &in->segments[i];
		if (s->vaddr >= START_KERNEL_MAP && s->vaddr != s->paddr)
			return s->paddr - (s->vaddr - START_KERNEL_MAP);
	}
	return 0;
}

/* The notes to copy: the input's own, or a VMCOREINFO note built from its text. */
static struct vm_error *notes_for_output(struct dump *in, uint8_t **notes, size_t *len, size_t *vmci_off,
					 size_t *vmci_len)
{
	size_t raw_len;
	const void *raw = dump_notes_raw(in, &raw_len);
	*vmci_off = *vmci_len = 0;
	if (raw) {
		*notes = malloc(raw_len ? raw_len : 1);
		if (!*notes)
			return &vm_error_nomem;
		memcpy(*notes, raw, raw_len);
		*len = raw_len;
		if (in->notes.vmcoreinfo) {
			*vmci_off = in->notes.vmcoreinfo_desc_off;
			*vmci_len = in->notes.vmcoreinfo_len;
		}
		return NULL;
	}
	const char *vmci = dump_vmcoreinfo(in);
	*notes = NULL;
	*len = 0;
	if (!vmci)
		return NULL;
	size_t tl = strlen(vmci), namesz = sizeof("VMCOREINFO");
	size_t total = 12 + ((namesz + 3) & ~(size_t)3) + ((tl + 3) & ~(size_t)3);
	uint8_t *n = calloc(1, total);
	if (!n)
		return &vm_error_nomem;
	put32(n, (uint32_t)namesz);
	put32(n + 4, (uint32_t)tl);
	put32(n + 8, 0);
	memcpy(n + 12, "VMCOREINFO", namesz);
	*vmci_off = 12 + ((namesz + 3) & ~(size_t)3);
	memcpy(n + *vmci_off, vmci, tl);
	*vmci_len = tl;
	*notes = n;
	*len = total;
	return NULL;
}

struct convert_job {
	struct dump *in;
	const struct convert_options *o;
	const char *path;
	int fd;
	uint32_t ps;
	uint64_t max_mapnr, bitmap_len, ndesc;
	uint8_t *bitmap1, *bitmap2;
	uint8_t *notes;
	size_t notes_len, vmci_off, vmci_len;
	int dump_level;
};

static void set_bit(uint8_t *bm, uint64_t i)
{
	bm[i >> 3] |= (uint8_t)(1u << (i & 7));
}

static void build_bitmaps(struct convert_job *j)
{
	for (uint64_t pfn = 0; pfn < j->max_mapnr; pfn++) {
		enum vm_errcode st = dump_page_state(j->in, pfn * j->ps);
		if (st == VM_ERR_HOLE || st == VM_ERR_BEYOND)
			continue;
		set_bit(j->bitmap1, pfn);
		if (st == 0) {
			set_bit(j->bitmap2, pfn);
			j->ndesc++;
		}
	}
}

static double seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct vm_error *write_pages(struct convert_job *j, uint64_t desc_off)
{
	uint64_t data_off = desc_off + j->ndesc * PAGE_DESC_SIZE;
	struct wbuf descs = { j->fd, j->path, desc_off, 0, malloc(WBUF_SIZE) };
	struct wbuf data = { j->fd, j->path, data_off, 0, malloc(WBUF_SIZE) };
	uint8_t *page = malloc(j->ps);
	struct compressor c;
	struct vm_error *err = compressor_init(&c, j->o->compression, j->ps);
	if (!err && (!descs.buf || !data.buf || !page))
		err = &vm_error_nomem;
	uint8_t zero_desc[PAGE_DESC_SIZE] = { 0 };
	if (!err && (j->dump_level & 1)) {
		put64(zero_desc, data_off);
		put32(zero_desc + 8, j->ps);
		memset(page, 0, j->ps);
		err = wbuf_put(&data, page, j->ps);
	}
	double start = seconds(), last = start;
	uint64_t done = 0;
	for (uint64_t pfn = 0; !err && pfn < j->max_mapnr; pfn++) {
		if (!(j->bitmap2[pfn >> 3] & (1u << (pfn & 7))))
			continue;
		if ((err = dump_read_phys(j->in, pfn * j->ps, page, j->ps, false))) {
			err = vm_error_prefix(err, "cannot convert");
			break;
		}
		uint8_t desc[PAGE_DESC_SIZE] = { 0 };
		if ((j->dump_level & 1) && is_zero_page(page, j->ps)) {
			memcpy(desc, zero_desc, sizeof(desc));
		} else {
			size_t n = compress_page(&c, page, j->ps);
			put64(desc, data.pos + data.used);
			put32(desc + 8, n ? (uint32_t)n : j->ps);
			put32(desc + 12, n ? compression_flag[c.kind] : 0);
			err = wbuf_put(&data, n ? c.out : page, n ? n : j->ps);
		}
		if (!err)
			err = wbuf_put(&descs, desc, sizeof(desc));
		if (++done % 4096 == 0 && j->o->progress) {
			double t = seconds();
			if (t - start > 1 && t - last > 0.5) {
				j->o->progress(j->o->progress_arg, done, j->ndesc);
				last = t;
			}
		}
	}
	if (!err)
		err = wbuf_flush(&descs);
	if (!err)
		err = wbuf_flush(&data);
	if (!err && j->o->progress && seconds() - start > 1)
		j->o->progress(j->o->progress_arg, done, j->ndesc);
	compressor_fini(&c);
	free(descs.buf);
	free(data.buf);
	free(page);
	return err;
}

static struct vm_error *write_headers(struct convert_job *j, uint32_t sub_hdr_blocks, uint32_t bitmap_blocks)
{
	struct dump *in = j->in;
	const struct dump_desc *desc = dump_describe(in);
	uint8_t *blk = calloc(1, j->ps);
	if (!blk)
		return &vm_error_nomem;
	memcpy(blk, "KDUMP   ", 8);
	put32(blk + 8, 6);
	char release[65] = "";
	snprintf(release, sizeof(release), "%s", desc->utsname_release);
	memcpy(blk + 12, "Linux", 5);
	memcpy(blk + 12 + 2 * 65, release, strlen(release));
	memcpy(blk + 12 + 4 * 65, "x86_64", 6);
	int64_t crashtime;
	struct vm_error *e = vmcoreinfo_crashtime(dump_vmcoreinfo(in), &crashtime);
	put64(blk + 408, e ? 0 : (uint64_t)crashtime);
	vm_error_destroy(e);
	put32(blk + 424, compression_flag[j->o->compression]);
	put32(blk + 428, j->ps);
	put32(blk + 432, sub_hdr_blocks);
	put32(blk + 436, bitmap_blocks);
	put32(blk + 440, j->max_mapnr > UINT32_MAX ? UINT32_MAX : (uint32_t)j->max_mapnr);
	int nr_cpus = desc->nr_cpus > 0 ? desc->nr_cpus : (int)in->notes.ncpus;
	put32(blk + 460, (uint32_t)nr_cpus);
	struct vm_error *err = pwrite_all(j->fd, j->path, blk, j->ps, 0);
	free(blk);
	if (err)
		return err;

	size_t sub_len = (size_t)sub_hdr_blocks * j->ps;
	uint8_t *kh = calloc(1, sub_len);
	if (!kh)
		return &vm_error_nomem;
	uint64_t note_off = j->ps + SUB_HEADER_SIZE;
	put64(kh, find_phys_base(in));
	put32(kh + 8, (uint32_t)j->dump_level);
	if (j->vmci_len) {
		put64(kh + 32, note_off + j->vmci_off);
		put64(kh + 40, j->vmci_len);
	}
	if (j->notes_len) {
		put64(kh + 48, note_off);
		put64(kh + 56, j->notes_len);
		memcpy(kh + SUB_HEADER_SIZE, j->notes, j->notes_len);
	}
	put64(kh + 96, j->max_mapnr);
	err = pwrite_all(j->fd, j->path, kh, sub_len, j->ps);
	free(kh);
	if (err)
		return err;
	uint64_t bitmap_off = (uint64_t)(1 + sub_hdr_blocks) * j->ps;
	err = pwrite_all(j->fd, j->path, j->bitmap1, j->bitmap_len, bitmap_off);
	if (!err)
		err = pwrite_all(j->fd, j->path, j->bitmap2, j->bitmap_len, bitmap_off + j->bitmap_len);
	return err;
}

struct vm_error *dump_convert(struct dump *in, const struct convert_options *o, const char *out_path)
{
	if (o->dump_level < 0 || o->dump_level > 1)
		return vm_error_create(VM_ERR_UNSUPPORTED, 0,
				       "dump level %d: convert applies only level 0 or 1 (zero pages); the other exclusions need the kernel's page flags",
				       o->dump_level);
	if ((unsigned)o->compression > CONVERT_ZSTD)
		return vm_error_create(VM_ERR_INVALID, 0, "unknown compression %d", (int)o->compression);
	struct vm_error *err = refuse_input_as_output(in, out_path);
	if (err)
		return err;
	const struct dump_desc *desc = dump_describe(in);
	struct convert_job j = { .in = in, .o = o, .path = out_path, .fd = -1, .ps = desc->page_size,
				 .max_mapnr = desc->max_pfn };
	j.dump_level = (desc->dump_level > 0 ? desc->dump_level : 0) | o->dump_level;
	j.bitmap_len = ((j.max_mapnr + 7) / 8 + j.ps - 1) / j.ps * j.ps;
	if (j.bitmap_len == 0)
		j.bitmap_len = j.ps;
	uint64_t bitmap_blocks = 2 * j.bitmap_len / j.ps;
	if (bitmap_blocks > UINT32_MAX)
		return vm_error_create(VM_ERR_UNSUPPORTED, 0, "%llu pages need too many bitmap blocks",
				       (unsigned long long)j.max_mapnr);
	j.bitmap1 = calloc(1, j.bitmap_len);
	j.bitmap2 = calloc(1, j.bitmap_len);
	if (!j.bitmap1 || !j.bitmap2) {
		err = &vm_error_nomem;
		goto out;
	}
	if ((err = notes_for_output(in, &j.notes, &j.notes_len, &j.vmci_off, &j.vmci_len)))
		goto out;
	build_bitmaps(&j);
	uint32_t sub_hdr_blocks = (uint32_t)((SUB_HEADER_SIZE + j.notes_len + j.ps - 1) / j.ps);
	uint64_t desc_off = (1 + (uint64_t)sub_hdr_blocks + bitmap_blocks) * j.ps;
	j.fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (j.fd < 0) {
		err = vm_error_errno(0, "%s: cannot create", out_path);
		goto out;
	}
	err = write_pages(&j, desc_off);
	if (!err)
		err = write_headers(&j, sub_hdr_blocks, (uint32_t)bitmap_blocks);
	if (close(j.fd) < 0 && !err)
		err = vm_error_errno(0, "%s: close", out_path);
	if (err)
		unlink(out_path);
out:
	free(j.bitmap1);
	free(j.bitmap2);
	free(j.notes);
	return err;
}
