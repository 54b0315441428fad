/*
 * Write any readable dump as a kdump-compressed file (header version 6, like makedumpfile -c/-l/-p
 * and --compress zstd), which crash, libkdumpfile and makedumpfile read.
 */
#ifndef MEMMODEL_CONVERT_H
#define MEMMODEL_CONVERT_H

#include <stdint.h>

#include "dump.h"
#include "error.h"

enum convert_compression {
	CONVERT_NONE,
	CONVERT_ZLIB,
	CONVERT_LZO,
	CONVERT_SNAPPY,
	CONVERT_ZSTD,
};

struct convert_options {
	enum convert_compression compression;
	/*
	 * makedumpfile dump level. Only bit 0 (zero pages) can be applied from the dump alone: with it,
	 * every all-zero page points at one shared zero page, as makedumpfile -d 1 does. Other bits
	 * need the kernel's page flags and are refused. Pages the input already lacks (excluded,
	 * lost) stay absent; the header records the input's level OR'ed with this one.
	 */
	int dump_level;
	/* Called now and then once the conversion has run for more than a second; may be NULL. */
	void (*progress)(void *arg, uint64_t pages_done, uint64_t pages_total);
	void *progress_arg;
};

/* "none", "zlib", "lzo", "snappy", "zstd". */
struct vm_error *convert_compression_parse(const char *name, enum convert_compression *ret);

/*
 * Write `in` to out_path (created or truncated; refused if it is one of the input files).
 * Fails on the first input page that cannot be decoded (VM_ERR_CORRUPT); a partial output file
 * is removed.
 */
struct vm_error *dump_convert(struct dump *in, const struct convert_options *o, const char *out_path);

#endif
