/*
 * Builders for small dump files used by the memmodel unit tests: kdump-compressed (any header
 * version, split, old single bitmap, lost and corrupt pages), flattened wrappers, ELF vmcores and
 * note blobs. Files go to mkstemp() paths under /tmp; call fx_unlink() when done.
 */
#ifndef DUMP_FIXTURE_H
#define DUMP_FIXTURE_H

#include <endian.h>
#include <lzo/lzo1x.h>
#include <snappy-c.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "dump.h"

#define FX_PS 4096

/* A growable byte buffer. */
struct fx_buf {
	uint8_t *p;
	size_t len, cap;
};

static inline void fx_reserve(struct fx_buf *b, size_t len)
{
	if (len <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < len)
		cap *= 2;
	b->p = realloc(b->p, cap);
	if (!b->p)
		abort();
	memset(b->p + b->cap, 0, cap - b->cap);
	b->cap = cap;
}

/* Write len bytes at off, growing (zero-filled) as needed. */
static inline void fx_put(struct fx_buf *b, size_t off, const void *src, size_t len)
{
	fx_reserve(b, off + len);
	memcpy(b->p + off, src, len);
	if (off + len > b->len)
		b->len = off + len;
}

static inline void fx_append(struct fx_buf *b, const void *src, size_t len)
{
	fx_put(b, b->len, src, len);
}

static inline void fx_put32(struct fx_buf *b, size_t off, uint32_t v)
{
	fx_put(b, off, &v, 4);
}

static inline void fx_put64(struct fx_buf *b, size_t off, uint64_t v)
{
	fx_put(b, off, &v, 8);
}

/* Save to a fresh temporary file; returns a malloc'd path. */
static inline char *fx_save(const struct fx_buf *b)
{
	char *path = strdup("/tmp/memmodel-fixture-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, b->p, b->len) != (ssize_t)b->len)
		abort();
	close(fd);
	return path;
}

static inline void fx_unlink(char *path)
{
	unlink(path);
	free(path);
}

/* Page contents the readers must give back: a pfn-specific head, then a compressible pattern. */
static inline void fx_content(uint64_t pfn, uint8_t *page)
{
	for (size_t i = 0; i < FX_PS; i++)
		page[i] = (uint8_t)(i < 16 ? (pfn >> (8 * (i % 8))) + i : (i / 64) ^ pfn);
}

/* ---- note blobs ---- */

static inline void fx_note(struct fx_buf *b, const char *name, uint32_t type, const void *desc, uint32_t descsz)
{
	uint32_t namesz = (uint32_t)strlen(name) + 1;
	uint32_t hdr[3] = { namesz, descsz, type };
	fx_append(b, hdr, sizeof(hdr));
	size_t off = b->len;
	fx_put(b, off, name, namesz);
	b->len = off + ((namesz + 3) & ~3u);
	fx_reserve(b, b->len);
	off = b->len;
	if (descsz)
		fx_put(b, off, desc, descsz);
	b->len = off + ((descsz + 3) & ~3u);
	fx_reserve(b, b->len);
}

/* NT_PRSTATUS with pr_pid = pid and pr_reg[i] = base + i. */
static inline void fx_prstatus(struct fx_buf *b, uint32_t pid, uint64_t base)
{
	uint8_t d[336] = { 0 };
	memcpy(d + 32, &pid, 4);
	for (int i = 0; i < 27; i++) {
		uint64_t v = base + (uint64_t)i;
		memcpy(d + 112 + 8 * i, &v, 8);
	}
	fx_note(b, "CORE", 1, d, sizeof(d));
}

/* QEMU CPU state of `size` bytes (432 or 440): gpr[i] = base + i, cr[i] = base + 100 + i. */
static inline void fx_qemu_note(struct fx_buf *b, uint32_t size, uint64_t base)
{
	uint8_t d[440] = { 0 };
	uint32_t version = 1;
	memcpy(d, &version, 4);
	memcpy(d + 4, &size, 4);
	for (int i = 0; i < 16; i++) {
		uint64_t v = base + (uint64_t)i;
		memcpy(d + 8 + 8 * i, &v, 8);
	}
	uint64_t gs_base = base + 0x6500;
	memcpy(d + 152 + 4 * 24 + 16, &gs_base, 8);
	for (int i = 0; i < 5; i++) {
		uint64_t v = base + 100 + (uint64_t)i;
		memcpy(d + 392 + 8 * i, &v, 8);
	}
	uint64_t kgs = base + 0x4b00;
	memcpy(d + 432, &kgs, 8);
	fx_note(b, "QEMU", 0, d, size);
}

static inline void fx_vmcoreinfo_note(struct fx_buf *b, const char *text)
{
	fx_note(b, "VMCOREINFO", 0, text, (uint32_t)strlen(text));
}

/* ---- kdump-compressed ---- */

enum fx_kind {
	FX_RAW, FX_ZLIB, FX_LZO, FX_SNAPPY, FX_ZSTD, FX_ZERO,
	FX_LOST,      /* descriptor left zero: incomplete dump */
	FX_BADZLIB,   /* flags zlib, data garbage */
	FX_OVERSIZE,  /* zlib data that inflates to two pages */
	FX_SHORTRAW,  /* flags 0 but size < page size */
};

struct fx_page {
	uint64_t pfn;
	enum fx_kind kind;
};

struct fx_kdump {
	int version;
	const char *signature;  /* default "KDUMP   " */
	uint64_t max_mapnr;
	uint64_t hole_lo, hole_hi; /* pfns clear in the 1st bitmap */
	const struct fx_page *pages; /* dumpable pages (set in the 2nd bitmap), ascending pfn */
	size_t npages;
	uint64_t split_start, split_end; /* both 0: not split */
	int single_bitmap;
	const struct fx_buf *notes; /* v4+ */
	const char *vmcoreinfo;     /* v3: stored as a plain blob */
	int dump_level;
	uint64_t phys_base;
};

static inline uint32_t fx_flag(enum fx_kind k)
{
	switch (k) {
	case FX_ZLIB: case FX_BADZLIB: case FX_OVERSIZE: return 0x1;
	case FX_LZO: return 0x2;
	case FX_SNAPPY: return 0x4;
	case FX_ZSTD: return 0x20;
	default: return 0;
	}
}

/* Page data as stored for kind k; returns its size in out (at least 2 pages big). */
static inline size_t fx_encode(enum fx_kind k, uint64_t pfn, uint8_t *out)
{
	uint8_t page[2 * FX_PS];
	fx_content(pfn, page);
	fx_content(pfn + 1, page + FX_PS);
	switch (k) {
	case FX_RAW:
		memcpy(out, page, FX_PS);
		return FX_PS;
	case FX_ZLIB: case FX_OVERSIZE: {
		uLongf n = 2 * FX_PS;
		if (compress2(out, &n, page, k == FX_OVERSIZE ? 2 * FX_PS : FX_PS, 1) != Z_OK)
			abort();
		return n;
	}
	case FX_LZO: {
		static uint8_t work[LZO1X_1_MEM_COMPRESS];
		lzo_uint n = 2 * FX_PS;
		lzo1x_1_compress(page, FX_PS, out, &n, work);
		return n;
	}
	case FX_SNAPPY: {
		size_t n = 2 * FX_PS;
		snappy_compress((const char *)page, FX_PS, (char *)out, &n);
		return n;
	}
	case FX_ZSTD:
		return ZSTD_compress(out, 2 * FX_PS, page, FX_PS, 1);
	case FX_BADZLIB:
		memset(out, 0xa5, 100);
		return 100;
	case FX_SHORTRAW:
		memcpy(out, page, FX_PS / 2);
		return FX_PS / 2;
	default:
		return 0;
	}
}

static inline void fx_setbit(struct fx_buf *b, size_t base, uint64_t i)
{
	fx_reserve(b, base + i / 8 + 1);
	b->p[base + i / 8] |= (uint8_t)(1u << (i % 8));
	if (base + i / 8 + 1 > b->len)
		b->len = base + i / 8 + 1;
}

/* Build one kdump file (for split sets, call once per range with split_start/end set). */
static inline struct fx_buf fx_kdump_build(const struct fx_kdump *k)
{
	struct fx_buf b = { 0 };
	const uint32_t bs = FX_PS;
	fx_put(&b, 0, k->signature ? k->signature : "KDUMP   ", 8);
	fx_put32(&b, 8, (uint32_t)k->version);
	fx_put(&b, 12 + 2 * 65, "6.1.0-fixture", 13);
	fx_put(&b, 12 + 4 * 65, "x86_64", 6);
	int lost = 0;
	for (size_t i = 0; i < k->npages; i++)
		lost |= k->pages[i].kind == FX_LOST;
	fx_put32(&b, 424, lost ? 0x8 : 0x1);
	fx_put32(&b, 428, bs);
	size_t sub_blocks = 0, notes_len = k->notes ? k->notes->len : 0;
	if (k->version >= 1) {
		size_t extra = k->version >= 4 ? notes_len : (k->vmcoreinfo ? strlen(k->vmcoreinfo) : 0);
		sub_blocks = (104 + extra + bs - 1) / bs;
	}
	fx_put32(&b, 432, (uint32_t)sub_blocks);
	uint64_t one = ((k->max_mapnr + 7) / 8 + bs - 1) / bs * bs;
	uint64_t bitmap_blocks = (k->single_bitmap ? 1 : 2) * one / bs;
	fx_put32(&b, 436, (uint32_t)bitmap_blocks);
	/* v6 readers must use max_mapnr_64: put a wrong value in the 32-bit field. */
	fx_put32(&b, 440, k->version >= 6 ? 7 : (uint32_t)k->max_mapnr);
	fx_put32(&b, 460, 2);
	uint64_t start = k->split_end ? k->split_start : 0, end = k->split_end ? k->split_end : k->max_mapnr;
	if (k->version >= 1) {
		size_t kh = bs;
		fx_put64(&b, kh, k->phys_base);
		fx_put32(&b, kh + 8, (uint32_t)k->dump_level);
		if (k->split_end) {
			fx_put32(&b, kh + 12, 1);
			fx_put64(&b, kh + 16, start);
			fx_put64(&b, kh + 24, end);
			fx_put64(&b, kh + 80, start);
			fx_put64(&b, kh + 88, end);
		}
		if (k->version == 3 && k->vmcoreinfo) {
			fx_put64(&b, kh + 32, bs + 104);
			fx_put64(&b, kh + 40, strlen(k->vmcoreinfo));
			fx_put(&b, bs + 104, k->vmcoreinfo, strlen(k->vmcoreinfo));
		}
		if (k->version >= 4 && notes_len) {
			fx_put64(&b, kh + 48, bs + 104);
			fx_put64(&b, kh + 56, notes_len);
			fx_put(&b, bs + 104, k->notes->p, notes_len);
		}
		if (k->version >= 6)
			fx_put64(&b, kh + 96, k->max_mapnr);
	}
	size_t bm1 = (1 + sub_blocks) * bs, bm2 = k->single_bitmap ? bm1 : bm1 + one;
	fx_reserve(&b, bm1 + bitmap_blocks * bs);
	b.len = bm1 + bitmap_blocks * bs;
	/* An old single-bitmap dump has only the dumpable bitmap. */
	for (uint64_t pfn = 0; !k->single_bitmap && pfn < k->max_mapnr; pfn++)
		if (!(pfn >= k->hole_lo && pfn < k->hole_hi))
			fx_setbit(&b, bm1, pfn);
	size_t ndesc = 0;
	for (size_t i = 0; i < k->npages; i++) {
		fx_setbit(&b, bm2, k->pages[i].pfn);
		ndesc += k->pages[i].pfn >= start && k->pages[i].pfn < end;
	}
	size_t desc = bm1 + bitmap_blocks * bs, data = desc + ndesc * 24;
	/* The shared zero page comes first in the data area. */
	uint8_t zero[FX_PS] = { 0 };
	uint64_t zero_off = data;
	fx_put(&b, data, zero, FX_PS);
	data += FX_PS;
	uint8_t enc[2 * FX_PS + 1024];
	for (size_t i = 0; i < k->npages; i++) {
		const struct fx_page *p = &k->pages[i];
		if (p->pfn < start || p->pfn >= end)
			continue;
		uint64_t d[3] = { 0, 0, 0 };
		if (p->kind == FX_ZERO) {
			d[0] = zero_off;
			d[1] = FX_PS;
		} else if (p->kind != FX_LOST) {
			size_t n = fx_encode(p->kind, p->pfn, enc);
			d[0] = data;
			d[1] = (uint64_t)n | ((uint64_t)fx_flag(p->kind) << 32);
			fx_put(&b, data, enc, n);
			data += n;
		}
		fx_put(&b, desc, d, 24);
		desc += 24;
	}
	return b;
}

/* Wrap a file in the flattened format: records of `chunk` bytes in reverse order, then the header
 * block again (an overlapping rewrite, as makedumpfile does), then the end marker. */
static inline struct fx_buf fx_flatten(const struct fx_buf *in, size_t chunk)
{
	struct fx_buf b = { 0 };
	fx_put(&b, 0, "makedumpfile", 12);
	uint64_t one = htobe64(1);
	fx_put(&b, 16, &one, 8);
	fx_put(&b, 24, &one, 8);
	b.len = 4096;
	fx_reserve(&b, b.len);
	size_t n = (in->len + chunk - 1) / chunk;
	for (size_t i = n; i-- > 0;) {
		size_t off = i * chunk, len = in->len - off < chunk ? in->len - off : chunk;
		uint64_t h[2] = { htobe64(off), htobe64(len) };
		fx_append(&b, h, 16);
		fx_append(&b, in->p + off, len);
	}
	uint64_t h[2] = { htobe64(0), htobe64(512) };
	fx_append(&b, h, 16);
	fx_append(&b, in->p, 512);
	uint64_t end[2] = { UINT64_MAX, UINT64_MAX };
	fx_append(&b, end, 16);
	return b;
}

/* ---- ELF ---- */

struct fx_load {
	uint64_t paddr, vaddr, filesz, memsz; /* data = fx_content of each page (by paddr pfn) */
};

/* An ELF vmcore with one PT_NOTE (if notes) and the given PT_LOADs; extra_excluded more PT_LOADs of
 * one excluded page each above the others (to pass 65535 segments). */
static inline struct fx_buf fx_elf_build(const struct fx_buf *notes, const struct fx_load *loads, size_t nloads,
					 size_t extra_excluded, uint32_t e_flags)
{
	struct fx_buf b = { 0 };
	size_t phnum = (notes ? 1 : 0) + nloads + extra_excluded;
	int xnum = phnum >= 0xffff;
	size_t phoff = 64, shoff = phoff + phnum * 56, dataoff = shoff + (xnum ? 64 : 0);
	uint8_t eh[64] = { 0x7f, 'E', 'L', 'F', 2, 1, 1 };
	uint16_t type = 4, machine = 62, ehsize = 64, phentsize = 56, phn = xnum ? 0xffff : (uint16_t)phnum;
	uint16_t shentsize = 64, shnum = xnum ? 1 : 0;
	uint32_t version = 1;
	uint64_t phoff64 = phoff, shoff64 = xnum ? shoff : 0;
	memcpy(eh + 16, &type, 2);
	memcpy(eh + 18, &machine, 2);
	memcpy(eh + 20, &version, 4);
	memcpy(eh + 32, &phoff64, 8);
	memcpy(eh + 40, &shoff64, 8);
	memcpy(eh + 48, &e_flags, 4);
	memcpy(eh + 52, &ehsize, 2);
	memcpy(eh + 54, &phentsize, 2);
	memcpy(eh + 56, &phn, 2);
	memcpy(eh + 58, &shentsize, 2);
	memcpy(eh + 60, &shnum, 2);
	fx_put(&b, 0, eh, 64);
	if (xnum)
		fx_put32(&b, shoff + 44, (uint32_t)phnum); /* sh_info of section 0 */
	size_t ph = phoff, data = dataoff;
	if (notes) {
		uint32_t t[2] = { 4, 0 };
		fx_put(&b, ph, t, 8);
		fx_put64(&b, ph + 8, data);
		fx_put64(&b, ph + 32, notes->len);
		fx_put64(&b, ph + 40, notes->len);
		fx_put(&b, data, notes->p, notes->len);
		data += notes->len;
		ph += 56;
	}
	uint8_t page[FX_PS];
	uint64_t top = 0;
	for (size_t i = 0; i < nloads; i++) {
		const struct fx_load *l = &loads[i];
		uint32_t t[2] = { 1, 7 };
		fx_put(&b, ph, t, 8);
		fx_put64(&b, ph + 8, l->filesz ? data : 0);
		fx_put64(&b, ph + 16, l->vaddr);
		fx_put64(&b, ph + 24, l->paddr);
		fx_put64(&b, ph + 32, l->filesz);
		fx_put64(&b, ph + 40, l->memsz);
		for (uint64_t off = 0; off < l->filesz; off++) {
			uint64_t pa = l->paddr + off;
			if (off == 0 || pa % FX_PS == 0)
				fx_content(pa / FX_PS, page);
			fx_put(&b, data + off, &page[pa % FX_PS], 1);
		}
		data += l->filesz;
		ph += 56;
		if (l->paddr + l->memsz > top)
			top = l->paddr + l->memsz;
	}
	for (size_t i = 0; i < extra_excluded; i++) {
		uint32_t t[2] = { 1, 7 };
		fx_put(&b, ph, t, 8);
		fx_put64(&b, ph + 24, top + i * FX_PS);
		fx_put64(&b, ph + 40, FX_PS);
		ph += 56;
	}
	return b;
}

/*
 * Saves b (and frees it), expects dump_open to refuse the file with code and a message naming the
 * file; what names the case in a failure report. Include cmocka.h before this header to use it.
 */
#ifdef cmocka_unit_test
static inline void fx_expect_open_error(struct fx_buf *b, enum vm_errcode code, const char *what)
{
	char *path = fx_save(b);
	const char *p = path;
	struct dump *d = NULL;
	struct vm_error *err = dump_open(&p, 1, NULL, &d);
	if (!err)
		fail_msg("%s: opened", what);
	if (err->code != code || !strstr(err->message, path))
		fail_msg("%s: code %d, message '%s'", what, (int)err->code, err->message);
	vm_error_destroy(err);
	fx_unlink(path);
	free(b->p);
}

/* Page pfn reads back as fx_content() wrote it, and its state says present. */
static inline void fx_expect_page(struct dump *d, uint64_t pfn)
{
	uint8_t got[FX_PS], want[FX_PS];
	fx_content(pfn, want);
	struct vm_error *err = dump_read_phys(d, pfn * FX_PS, got, FX_PS, false);
	if (err)
		fail_msg("pfn %llu: %s", (unsigned long long)pfn, err->message);
	assert_memory_equal(got, want, FX_PS);
	assert_int_equal(dump_page_state(d, pfn * FX_PS), 0);
}
#endif

#endif
