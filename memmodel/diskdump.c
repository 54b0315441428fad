/*
 * kdump-compressed dumps ("KDUMP   " from makedumpfile and QEMU, old "DISKDUMP"), plain, flattened
 * or split into several files. Layout: header block, sub header + notes, 1st bitmap (RAM) and 2nd
 * bitmap (dumpable) block-aligned, one 24-byte descriptor per dumpable page, then page data.
 * A prefix popcount table over the 2nd bitmap maps a pfn to its descriptor in O(1).
 */
#include "dump_priv.h"
#include "bytes.h"

#include <libdeflate.h>
#include <lzo/lzo1x.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zstd.h>

#define HEADER_SIZE 464
#define SUB_HEADER_SIZE 104
#define PAGE_DESC_SIZE 24
#define DEFAULT_CACHE_PAGES 4096
#define MAX_NOTES_SIZE (64u << 20)
#define KNOWN_COMPRESSION \
	(DUMP_DH_COMPRESSED_ZLIB | DUMP_DH_COMPRESSED_LZO | DUMP_DH_COMPRESSED_SNAPPY | DUMP_DH_COMPRESSED_ZSTD)

static bool bit_at(const uint8_t *bm, uint64_t i)
{
	return (bm[i >> 3] >> (i & 7)) & 1;
}

/* Set bits of bm in [0, x), x <= bitmap bits, using the prefix table. */
static uint64_t rank_of(const struct kdump_file *f, uint64_t x)
{
	uint64_t block = x / RANK_BLOCK_BITS, n = f->rank[block];
	uint64_t byte = block * (RANK_BLOCK_BITS / 8), end_byte = x >> 3;
	for (; byte + 8 <= end_byte; byte += 8)
		n += (uint64_t)__builtin_popcountll(load_u64(f->bitmap2 + byte));
	for (; byte < end_byte; byte++)
		n += (uint64_t)__builtin_popcount(f->bitmap2[byte]);
	if (x & 7)
		n += (uint64_t)__builtin_popcount(f->bitmap2[end_byte] & ((1u << (x & 7)) - 1));
	return n;
}

static struct vm_error *build_rank(struct kdump_file *f)
{
	uint64_t nblocks = (f->bitmap_bits + RANK_BLOCK_BITS - 1) / RANK_BLOCK_BITS;
	f->rank = malloc((nblocks + 1) * sizeof(*f->rank));
	if (!f->rank)
		return &vm_error_nomem;
	uint64_t total = 0, nbytes = f->bitmap_bits / 8;
	for (uint64_t b = 0; b < nblocks; b++) {
		f->rank[b] = total;
		uint64_t byte = b * (RANK_BLOCK_BITS / 8), end = byte + RANK_BLOCK_BITS / 8;
		if (end > nbytes)
			end = nbytes;
		for (; byte + 8 <= end; byte += 8)
			total += (uint64_t)__builtin_popcountll(load_u64(f->bitmap2 + byte));
		for (; byte < end; byte++)
			total += (uint64_t)__builtin_popcount(f->bitmap2[byte]);
	}
	f->rank[nblocks] = total;
	return NULL;
}

/* Map (plain file) or read (flattened) both bitmaps: the only part of the dump read at open. */
static struct vm_error *load_bitmaps(struct kdump_file *f, uint64_t off, uint64_t len)
{
	struct dump_source *src = &f->src;
	if (off > src->size || len > src->size - off || !source_can_hold(src, len))
		return vm_error_create(VM_ERR_FORMAT, off,
				       "%s: bitmaps (%#llx bytes at %#llx) run past the end of the file",
				       src->path, (unsigned long long)len, (unsigned long long)off);
	if (len > SIZE_MAX)
		return &vm_error_nomem;
	if (!src->flat) {
		uint64_t pagesz = (uint64_t)sysconf(_SC_PAGESIZE), lead = off % pagesz;
		void *m = mmap(NULL, (size_t)(len + lead), PROT_READ, MAP_PRIVATE, src->fd, (off_t)(off - lead));
		if (m != MAP_FAILED) {
			f->bitmap_mem = m;
			f->bitmap_mem_len = (size_t)(len + lead);
			f->bitmap_mapped = true;
			f->bitmap1 = (const uint8_t *)m + lead;
			return NULL;
		}
	}
	uint8_t *buf = malloc((size_t)len);
	if (!buf)
		return &vm_error_nomem;
	f->bitmap_mem = buf;
	f->bitmap1 = buf;
	struct vm_error *err = source_read(src, off, buf, (size_t)len);
	return err ? vm_error_prefix(err, "%s: bitmaps", src->path) : NULL;
}

static void copy_field(char *dst, const uint8_t *src, size_t n)
{
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static struct vm_error *open_file(struct dump *d, const char *path, struct kdump_file *f)
{
	struct dump_source *src = &f->src;
	struct vm_error *err = source_open(path, src);
	if (err)
		return err;
	uint8_t h[HEADER_SIZE];
	if (src->size < sizeof(h))
		return vm_error_create(VM_ERR_FORMAT, 0, "%s: too short for a kdump header", path);
	if ((err = source_read(src, 0, h, sizeof(h))))
		return err;
	if (memcmp(h, "KDUMP   ", 8) != 0 && memcmp(h, "DISKDUMP", 8) != 0)
		return vm_error_create(VM_ERR_FORMAT, 0, "%s: no KDUMP or DISKDUMP signature", path);
	f->header_version = (int32_t)load_u32(h + 8);
	f->status = load_u32(h + 424);
	/* The old diskdump's status 8 means "compressed", not makedumpfile's INCOMPLETE bit. */
	if (memcmp(h, "DISKDUMP", 8) == 0)
		f->status &= ~(uint32_t)DUMP_DH_COMPRESSED_INCOMPLETE;
	f->block_size = load_u32(h + 428);
	f->sub_hdr_size = load_u32(h + 432);
	f->bitmap_blocks = load_u32(h + 436);
	f->max_mapnr = load_u32(h + 440);
	uint32_t bs = f->block_size;
	if (f->header_version < 0)
		return vm_error_create(VM_ERR_FORMAT, 8, "%s: header version %d", path, f->header_version);
	if (bs < 1024 || bs > (1u << 16) || (bs & (bs - 1)))
		return vm_error_create(VM_ERR_FORMAT, 428, "%s: block size %u is not a power of two in [1K, 64K]",
				       path, bs);
	if (f->sub_hdr_size == 0 && f->header_version >= 1)
		return vm_error_create(VM_ERR_FORMAT, 432, "%s: header version %d but no sub header",
				       path, f->header_version);
	f->dump_level = -1;
	uint8_t kh[SUB_HEADER_SIZE] = { 0 };
	if (f->header_version >= 1) {
		if ((err = source_read(src, bs, kh, sizeof(kh))))
			return vm_error_prefix(err, "%s: sub header", path);
		f->phys_base = load_u64(kh);
		f->dump_level = (int32_t)load_u32(kh + 8);
	}
	f->start_pfn = 0;
	if (f->header_version >= 2 && load_u32(kh + 12)) {
		f->split = true;
		f->start_pfn = f->header_version >= 6 ? load_u64(kh + 80) : load_u64(kh + 16);
		f->end_pfn = f->header_version >= 6 ? load_u64(kh + 88) : load_u64(kh + 24);
	}
	if (f->header_version >= 3) {
		f->offset_vmcoreinfo = load_u64(kh + 32);
		f->size_vmcoreinfo = load_u64(kh + 40);
	}
	if (f->header_version >= 4) {
		f->offset_note = load_u64(kh + 48);
		f->size_note = load_u64(kh + 56);
	}
	if (f->header_version >= 6)
		f->max_mapnr = load_u64(kh + 96);
	if (!f->split)
		f->end_pfn = f->max_mapnr;
	if (f->start_pfn > f->end_pfn || f->end_pfn > f->max_mapnr)
		return vm_error_create(VM_ERR_FORMAT, bs, "%s: split range [%#llx, %#llx) is not within max_mapnr %#llx",
				       path, (unsigned long long)f->start_pfn, (unsigned long long)f->end_pfn,
				       (unsigned long long)f->max_mapnr);

	/* Bitmaps: two of bitmap_blocks/2 blocks each; an old single-bitmap dump has one. */
	uint64_t bitmap_off = (uint64_t)bs * (1 + (uint64_t)f->sub_hdr_size);
	uint64_t total = (uint64_t)f->bitmap_blocks * bs;
	uint64_t one = ((f->max_mapnr + 7) / 8 + bs - 1) / bs * bs;
	bool two = total >= 2 * one && f->bitmap_blocks >= 2;
	uint64_t half = two ? (uint64_t)(f->bitmap_blocks / 2) * bs : total;
	if (total == 0 || half * 8 < f->max_mapnr)
		return vm_error_create(VM_ERR_FORMAT, 436, "%s: %u bitmap blocks cannot hold %llu pages",
				       path, f->bitmap_blocks, (unsigned long long)f->max_mapnr);
	if ((err = load_bitmaps(f, bitmap_off, total)))
		return err;
	f->bitmap2 = two ? f->bitmap1 + half : f->bitmap1;
	f->bitmap_bits = f->max_mapnr;
	if ((err = build_rank(f)))
		return err;
	f->start_rank = rank_of(f, f->start_pfn);
	f->ndesc = rank_of(f, f->end_pfn) - f->start_rank;
	/* Building the table touched every bitmap page; drop them so memory does not grow with the
	 * dump's address space. They fault back in from the page cache only where a lookup needs them. */
	if (f->bitmap_mapped)
		madvise(f->bitmap_mem, f->bitmap_mem_len, MADV_DONTNEED);
	f->desc_offset = bitmap_off + total;
	(void)d;
	return NULL;
}

static void close_file(struct kdump_file *f)
{
	if (f->bitmap_mapped)
		munmap(f->bitmap_mem, f->bitmap_mem_len);
	else
		free(f->bitmap_mem);
	free(f->rank);
	source_close(&f->src);
}

static int cmp_file_start(const void *a, const void *b)
{
	const struct kdump_file *x = a, *y = b;
	return x->start_pfn < y->start_pfn ? -1 : x->start_pfn > y->start_pfn;
}

static struct vm_error *read_blob(struct kdump_file *f, uint64_t off, uint64_t len, const char *what,
				  uint8_t **ret)
{
	if (len > MAX_NOTES_SIZE || !source_can_hold(&f->src, len))
		return vm_error_create(VM_ERR_FORMAT, off, "%s: %s of %llu bytes at %#llx is too large",
				       f->src.path, what, (unsigned long long)len, (unsigned long long)off);
	uint8_t *buf = malloc((size_t)len + 1);
	if (!buf)
		return &vm_error_nomem;
	struct vm_error *err = source_read(&f->src, off, buf, (size_t)len);
	if (err) {
		free(buf);
		return vm_error_prefix(err, "%s: %s", f->src.path, what);
	}
	buf[len] = 0;
	*ret = buf;
	return NULL;
}

static struct vm_error *check_set(struct kdump_state *kd)
{
	const struct kdump_file *a = &kd->files[0];
	for (size_t i = 1; i < kd->nfiles; i++) {
		const struct kdump_file *b = &kd->files[i];
		if (!a->split || !b->split)
			return vm_error_create(VM_ERR_INVALID, 0, "%s and %s: several files given but %s is not part of a split dump",
					       a->src.path, b->src.path, a->split ? b->src.path : a->src.path);
		if (b->block_size != a->block_size || b->max_mapnr != a->max_mapnr)
			return vm_error_create(VM_ERR_INVALID, 0, "%s and %s are not from the same dump (block size or max_mapnr differ)",
					       a->src.path, b->src.path);
		if (kd->files[i - 1].end_pfn > b->start_pfn)
			return vm_error_create(VM_ERR_INVALID, 0, "%s and %s hold overlapping pfn ranges",
					       kd->files[i - 1].src.path, b->src.path);
	}
	return NULL;
}

struct vm_error *kdump_open(struct dump *d, const char *const *paths, size_t npaths,
			    const struct dump_options *o)
{
	struct kdump_state *kd = &d->kd;
	kd->files = calloc(npaths, sizeof(*kd->files));
	if (!kd->files)
		return &vm_error_nomem;
	for (size_t i = 0; i < npaths; i++)
		kd->files[i].src.fd = -1;
	kd->nfiles = npaths;
	struct vm_error *err;
	for (size_t i = 0; i < npaths; i++)
		if ((err = open_file(d, paths[i], &kd->files[i])))
			return err;
	qsort(kd->files, npaths, sizeof(*kd->files), cmp_file_start);
	if ((err = check_set(kd)))
		return err;
	struct kdump_file *f = &kd->files[0];
	if (f->header_version >= 4 && f->offset_note && f->size_note) {
		if ((err = read_blob(f, f->offset_note, f->size_note, "notes", &d->raw_notes)))
			return err;
		d->raw_notes_len = f->size_note;
	} else if (f->header_version >= 3 && f->offset_vmcoreinfo && f->size_vmcoreinfo) {
		uint8_t *vmci;
		if ((err = read_blob(f, f->offset_vmcoreinfo, f->size_vmcoreinfo, "VMCOREINFO", &vmci)))
			return err;
		d->notes.vmcoreinfo = (char *)vmci;
		d->notes.vmcoreinfo_len = strlen((char *)vmci);
	}
	size_t cache_pages = o->cache_pages ? o->cache_pages : DEFAULT_CACHE_PAGES;
	if ((err = pagecache_create(cache_pages, f->block_size, &kd->cache)))
		return err;
	kd->cbuf = malloc(f->block_size);
	kd->zstd_dctx = ZSTD_createDCtx();
	kd->inflater = libdeflate_alloc_decompressor();
	if (!kd->cbuf || !kd->zstd_dctx || !kd->inflater)
		return &vm_error_nomem;
	if (lzo_init() != LZO_E_OK)
		return vm_error_create(VM_ERR_UNSUPPORTED, 0, "lzo_init failed");

	struct dump_desc *desc = &d->desc;
	bool flat = f->src.flat != NULL;
	desc->format = npaths > 1 || f->split ? "split-kdump" : flat ? "flattened-kdump" : "kdump";
	desc->page_size = f->block_size;
	desc->max_pfn = f->max_mapnr;
	desc->header_version = f->header_version;
	desc->dump_level = f->dump_level;
	desc->incomplete = false;
	desc->compression = 0;
	for (size_t i = 0; i < npaths; i++) {
		desc->incomplete |= (kd->files[i].status & DUMP_DH_COMPRESSED_INCOMPLETE) != 0;
		desc->compression |= kd->files[i].status & KNOWN_COMPRESSION;
	}
	desc->has_phys_base = f->header_version >= 1;
	desc->phys_base = f->phys_base;
	uint8_t h[HEADER_SIZE];
	if ((err = source_read(&f->src, 0, h, sizeof(h))))
		return err;
	int32_t nr_cpus = (int32_t)load_u32(h + 460);
	desc->nr_cpus = nr_cpus > 0 ? nr_cpus : -1;
	copy_field(desc->utsname_release, h + 12 + 2 * 65, 64);
	copy_field(desc->utsname_machine, h + 12 + 4 * 65, 64);
	char level[32] = "";
	if (f->dump_level >= 0)
		snprintf(level, sizeof(level), ", dump level %d", f->dump_level);
	snprintf(desc->description, sizeof(desc->description), "%s%s v%d, %s%s%s%s",
		 flat ? "flattened " : "", memcmp(h, "DISKDUMP", 8) ? "kdump-compressed" : "diskdump",
		 f->header_version, dump_compression_name(desc->compression), level,
		 npaths > 1 || f->split ? ", split" : "", desc->incomplete ? ", incomplete" : "");
	return NULL;
}

void kdump_close(struct dump *d)
{
	struct kdump_state *kd = &d->kd;
	for (size_t i = 0; i < kd->nfiles; i++)
		close_file(&kd->files[i]);
	free(kd->files);
	pagecache_destroy(kd->cache);
	free(kd->cbuf);
	ZSTD_freeDCtx(kd->zstd_dctx);
	if (kd->inflater)
		libdeflate_free_decompressor(kd->inflater);
}

/* The file of a split set whose range holds pfn, or NULL. */
static struct kdump_file *file_for(struct kdump_state *kd, uint64_t pfn)
{
	size_t lo = 0, hi = kd->nfiles;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (kd->files[mid].start_pfn <= pfn)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	struct kdump_file *f = &kd->files[lo - 1];
	return pfn < f->end_pfn ? f : NULL;
}

struct page_desc {
	uint64_t offset;
	uint32_t size, flags;
};

/*
 * Classify pfn; when it has a descriptor, read it into *pd (if pd is non-NULL). `why` gets a reason
 * for errors. Returns 0 or the error code.
 */
static enum vm_errcode classify(struct dump *d, uint64_t pfn, struct kdump_file **fret,
				struct page_desc *pd, const char **why)
{
	struct kdump_state *kd = &d->kd;
	const struct kdump_file *any = &kd->files[0];
	if (pfn >= any->max_mapnr) {
		*why = "is beyond the end of physical memory (max_mapnr)";
		return VM_ERR_BEYOND;
	}
	struct kdump_file *f = file_for(kd, pfn);
	if (!bit_at((f ? f : any)->bitmap1, pfn)) {
		*why = "is in a memory hole (clear in the 1st bitmap)";
		return VM_ERR_HOLE;
	}
	if (!f) {
		*why = "belongs to a file of the split set that was not given";
		return VM_ERR_INCOMPLETE;
	}
	*fret = f;
	if (!bit_at(f->bitmap2, pfn)) {
		*why = "was excluded by the dump level (clear in the 2nd bitmap)";
		return VM_ERR_EXCLUDED;
	}
	uint64_t idx = rank_of(f, pfn) - f->start_rank;
	uint64_t off = f->desc_offset + idx * PAGE_DESC_SIZE;
	if (off + PAGE_DESC_SIZE > f->src.size) {
		*why = "has its page descriptor past the end of the file (incomplete dump)";
		return VM_ERR_INCOMPLETE;
	}
	if (!pd && !(f->status & DUMP_DH_COMPRESSED_INCOMPLETE))
		return 0;
	struct page_desc tmp;
	if (!pd)
		pd = &tmp;
	if (kd->desc_run_file != f || off < kd->desc_run_off || off + PAGE_DESC_SIZE > kd->desc_run_off + kd->desc_run_len) {
		uint64_t end = f->desc_offset + f->ndesc * PAGE_DESC_SIZE;
		if (end > f->src.size)
			end = f->src.size;
		uint64_t len = end - off < sizeof(kd->desc_run) ? end - off : sizeof(kd->desc_run);
		kd->desc_run_file = NULL;
		struct vm_error *err = source_read(&f->src, off, kd->desc_run, len);
		if (err) {
			vm_error_destroy(err);
			*why = "has a page descriptor that cannot be read";
			return VM_ERR_CORRUPT;
		}
		kd->desc_run_file = f;
		kd->desc_run_off = off;
		kd->desc_run_len = len;
	}
	const uint8_t *raw = kd->desc_run + (off - kd->desc_run_off);
	pd->offset = load_u64(raw);
	pd->size = load_u32(raw + 8);
	pd->flags = load_u32(raw + 12);
	if (pd->offset == 0) {
		*why = "was lost: the dump was cut short (descriptor offset 0)";
		return VM_ERR_INCOMPLETE;
	}
	return 0;
}

enum vm_errcode kdump_page_state(struct dump *d, uint64_t pfn)
{
	struct kdump_file *f;
	const char *why;
	return classify(d, pfn, &f, NULL, &why);
}

static struct vm_error *decode(struct dump *d, struct kdump_file *f, uint64_t pfn,
			       const struct page_desc *pd, uint8_t *out)
{
	struct kdump_state *kd = &d->kd;
	uint32_t ps = f->block_size;
	uint64_t pa = pfn * ps;
	const char *path = f->src.path;
	if (pd->size > ps || pd->size == 0 || (pd->flags == 0 && pd->size != ps))
		return vm_error_create(VM_ERR_CORRUPT, pa, "%s: page at %#llx: stored size %u (flags %#x) for a %u-byte page",
				       path, (unsigned long long)pa, pd->size, pd->flags, ps);
	if (pd->offset > f->src.size || pd->size > f->src.size - pd->offset)
		return vm_error_create(VM_ERR_INCOMPLETE, pa, "%s: page at %#llx: data at %#llx is past the end of the file (incomplete dump)",
				       path, (unsigned long long)pa, (unsigned long long)pd->offset);
	uint8_t *in = pd->flags ? kd->cbuf : out;
	struct vm_error *err = source_read(&f->src, pd->offset, in, pd->size);
	if (err)
		return err;
	uint32_t comp = pd->flags & KNOWN_COMPRESSION;
	if (pd->flags == 0)
		return NULL;
	if (pd->flags & ~KNOWN_COMPRESSION || (comp & (comp - 1)))
		return vm_error_create(VM_ERR_CORRUPT, pa, "%s: page at %#llx: descriptor flags %#x name no single compression",
				       path, (unsigned long long)pa, pd->flags);
	bool ok = false;
	uint64_t outlen = 0;
	if (comp == DUMP_DH_COMPRESSED_ZLIB) {
		size_t n = 0;
		ok = libdeflate_zlib_decompress(kd->inflater, in, pd->size, out, ps, &n) == LIBDEFLATE_SUCCESS;
		outlen = n;
	} else if (comp == DUMP_DH_COMPRESSED_LZO) {
		lzo_uint n = ps;
		ok = lzo1x_decompress_safe(in, pd->size, out, &n, NULL) == LZO_E_OK;
		outlen = n;
	} else if (comp == DUMP_DH_COMPRESSED_SNAPPY) {
		size_t n = 0;
		ok = snappy_uncompressed_length((const char *)in, pd->size, &n) == SNAPPY_OK && n == ps;
		if (ok) {
			ok = snappy_uncompress((const char *)in, pd->size, (char *)out, &n) == SNAPPY_OK;
			outlen = n;
		}
	} else {
		size_t n = ZSTD_decompressDCtx(kd->zstd_dctx, out, ps, in, pd->size);
		ok = !ZSTD_isError(n);
		outlen = ok ? n : 0;
	}
	if (!ok || outlen != ps)
		return vm_error_create(VM_ERR_CORRUPT, pa, "%s: page at %#llx: %s data at %#llx (%u bytes) does not decompress to one %u-byte page",
				       path, (unsigned long long)pa, dump_compression_name(comp),
				       (unsigned long long)pd->offset, pd->size, ps);
	return NULL;
}

struct vm_error *kdump_page(struct dump *d, uint64_t pfn, const uint8_t **page)
{
	struct kdump_state *kd = &d->kd;
	const uint8_t *hit = pagecache_get(kd->cache, pfn);
	if (hit) {
		*page = hit;
		return NULL;
	}
	struct kdump_file *f = NULL;
	struct page_desc pd;
	const char *why = "";
	enum vm_errcode code = classify(d, pfn, &f, &pd, &why);
	if (code) {
		const char *path = f ? f->src.path : kd->files[0].src.path;
		uint64_t pa = pfn * d->desc.page_size;
		return vm_error_create(code, pa, "%s: physical page %#llx %s", path, (unsigned long long)pa, why);
	}
	uint8_t *slot = pagecache_claim(kd->cache);
	struct vm_error *err = decode(d, f, pfn, &pd, slot);
	if (err)
		return err;
	pagecache_publish(kd->cache, pfn);
	*page = slot;
	return NULL;
}
