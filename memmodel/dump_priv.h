/* Internals shared by the dump readers (dump.c, elfdump.c, diskdump.c, flattened.c, convert.c). */
#ifndef MEMMODEL_DUMP_PRIV_H
#define MEMMODEL_DUMP_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dump.h"
#include "error.h"
#include "notes.h"
#include "pagecache.h"

/* Flattened files: sorted, non-overlapping extents of the rearranged file, each a slice of a record. */
struct flat_extent {
	uint64_t target, len, file_off;
};

struct flat_index {
	struct flat_extent *ext;
	size_t n;
	uint64_t size; /* end of the rearranged file */
	size_t nrecords;
};

#define FLAT_HEADER_SIZE 4096

/* True when the first bytes of a file (at least 32) are a makedumpfile flat header. */
bool flat_detect(const uint8_t *head, size_t len);
struct vm_error *flat_index_build(int fd, const char *path, uint64_t file_size, struct flat_index **ret);
void flat_index_free(struct flat_index *idx);

/* A dump file as the readers see it: a plain file, or a flattened one read through its index. */
struct dump_source {
	char *path;
	int fd;
	uint64_t file_size;
	uint64_t size; /* content size: file size, or the rearranged size when flattened */
	struct flat_index *flat;
};

struct vm_error *source_open(const char *path, struct dump_source *src);
void source_close(struct dump_source *src);
/*
 * Whether a structure of len bytes could be stored in the file at all: caps what a header may make
 * us allocate (a flattened file's content size can claim far more than the file holds).
 */
static inline bool source_can_hold(const struct dump_source *src, uint64_t len)
{
	return len <= src->file_size;
}

/* Read exactly len content bytes at off (gaps in a flattened file read as zeros). */
struct vm_error *source_read(struct dump_source *src, uint64_t off, void *buf, size_t len);

/* ELF: PT_LOADs sorted by paddr, with the running maximum of their ends for lookups. */
struct elf_load {
	uint64_t paddr, memsz, filesz, offset;
};

struct elf_state {
	struct elf_load *loads;
	uint64_t *max_end;
	size_t nloads;
};

/* One kdump-compressed file (a split set has several). */
struct kdump_file {
	struct dump_source src;
	int header_version;
	uint32_t status, block_size, sub_hdr_size, bitmap_blocks;
	uint64_t max_mapnr;
	uint64_t phys_base;
	int dump_level;
	bool split;
	uint64_t start_pfn, end_pfn; /* descriptors held: [start, end) */
	uint64_t bitmap_bits;        /* bits in each bitmap */
	const uint8_t *bitmap1, *bitmap2;
	void *bitmap_mem;            /* what to unmap or free */
	size_t bitmap_mem_len;
	bool bitmap_mapped;
	uint64_t *rank;              /* set 2nd-bitmap bits before each RANK_BLOCK_BITS block */
	uint64_t start_rank;         /* rank(start_pfn) */
	uint64_t desc_offset;        /* page descriptor array */
	uint64_t ndesc;
	uint64_t offset_vmcoreinfo, size_vmcoreinfo, offset_note, size_note;
};

#define RANK_BLOCK_BITS 4096

struct libdeflate_decompressor;

struct kdump_state {
	struct kdump_file *files; /* sorted by start_pfn */
	size_t nfiles;
	struct pagecache *cache;
	uint8_t *cbuf;            /* compressed page staging, block_size bytes */
	/* A run of page descriptors read at once: sequential reads then cost one read per run. */
	uint8_t desc_run[170 * 24];
	const struct kdump_file *desc_run_file;
	uint64_t desc_run_off, desc_run_len;
	void *zstd_dctx;
	/* zlib pages: libdeflate inflates a whole 4 KiB page about twice as fast as zlib. */
	struct libdeflate_decompressor *inflater;
};

enum dump_kind { DUMP_KIND_ELF, DUMP_KIND_KDUMP };

struct dump {
	struct dump_desc desc;
	enum dump_kind kind;
	struct dump_source elf_src; /* DUMP_KIND_ELF */
	struct elf_state elf;
	struct kdump_state kd;      /* DUMP_KIND_KDUMP */
	uint8_t *raw_notes;
	size_t raw_notes_len;
	struct note_set notes;
	struct dump_segment *segments;
	size_t nsegments;
};

/* Per-format open, filling everything in *d except what dump.c derives from notes. */
struct vm_error *elfdump_open(struct dump *d, const char *path, const struct dump_options *o);
void elfdump_close(struct dump *d);
enum vm_errcode elfdump_page_state(struct dump *d, uint64_t paddr);
struct vm_error *elfdump_read(struct dump *d, uint64_t paddr, void *buf, size_t len, bool zero_excluded);

struct vm_error *kdump_open(struct dump *d, const char *const *paths, size_t npaths,
			    const struct dump_options *o);
void kdump_close(struct dump *d);
enum vm_errcode kdump_page_state(struct dump *d, uint64_t pfn);
/* The decoded page pfn (valid until the next read), or an error with addr = its physical address. */
struct vm_error *kdump_page(struct dump *d, uint64_t pfn, const uint8_t **page);

/* Which compression a DUMP_DH_COMPRESSED_* flag set names, for descriptions. */
const char *dump_compression_name(uint32_t flags);

#endif
