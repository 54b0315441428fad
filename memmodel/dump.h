/*
 * Physical memory and notes of a crash dump, whatever its format: ELF (kdump's /proc/vmcore,
 * makedumpfile -E, QEMU), kdump-compressed (makedumpfile, QEMU; header versions 0-6), flattened
 * (-F, QEMU's kdump output; read in place), split sets. No kernel knowledge here. Files are opened
 * read-only and never written. A struct dump is not thread-safe (it owns a page cache).
 */
#ifndef MEMMODEL_DUMP_H
#define MEMMODEL_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct dump;

struct dump_options {
	size_t cache_pages; /* LRU of decoded kdump pages, bounds memory use; 0 = 4096 pages */
};

/* What the dump says about itself. Strings are empty, numbers -1/0 when the format has no such field. */
struct dump_desc {
	const char *format;     /* "elf", "flattened-elf", "kdump", "flattened-kdump", "split-kdump" */
	char description[160];  /* human form: "kdump-compressed v6, zlib, dump level 31" */
	uint32_t page_size;
	uint64_t max_pfn;       /* end of physical memory, in pages */
	int header_version;     /* kdump header version, -1 for ELF */
	int dump_level;         /* -1 unknown */
	uint32_t compression;   /* DUMP_DH_COMPRESSED_* bits seen in header status, 0 for ELF */
	bool incomplete;        /* writer ran out of space */
	bool has_phys_base;     /* header phys_base (kdump sub header); QEMU writes a wrong one:
				   prefer VMCOREINFO NUMBER(phys_base) */
	uint64_t phys_base;
	int nr_cpus;            /* from the header, -1 if unknown */
	char utsname_release[65];
	char utsname_machine[65];
	size_t nfiles;
};

/* One ELF PT_LOAD (ELF dumps only): lets the kernel layer derive phys_base / page_offset. */
struct dump_segment {
	uint64_t vaddr, paddr, filesz, memsz;
};

/* QEMU "QEMU" note (QEMUCPUState v1). */
struct dump_qemu_cpu {
	uint64_t gpr[16]; /* rax rbx rcx rdx rsi rdi rsp rbp r8..r15 (QEMU order) */
	uint64_t rip, rflags;
	struct { uint32_t selector, limit, flags; uint64_t base; } seg[10]; /* cs ds es fs gs ss ldt tr gdt idt */
	uint64_t cr[5];
	bool has_kernel_gs_base; /* size >= 440 */
	uint64_t kernel_gs_base;
};

/* Saved state of one CPU, in note order (not CPU id order: the kernel layer maps them). */
struct dump_cpu_note {
	int index;          /* position among NT_PRSTATUS notes */
	bool has_prstatus;
	uint32_t pr_pid;
	uint64_t pr_reg[27]; /* user_regs_struct order: r15 r14 ... gs */
	bool has_qemu;
	struct dump_qemu_cpu qemu;
};

#define DUMP_DH_COMPRESSED_ZLIB 0x1
#define DUMP_DH_COMPRESSED_LZO 0x2
#define DUMP_DH_COMPRESSED_SNAPPY 0x4
#define DUMP_DH_COMPRESSED_INCOMPLETE 0x8
#define DUMP_DH_EXCLUDED_VMEMMAP 0x10
#define DUMP_DH_COMPRESSED_ZSTD 0x20

/* Open one dump, or a split set (several files, any order). Opens read-only; never writes. */
struct vm_error *dump_open(const char *const *paths, size_t npaths, const struct dump_options *opts,
			   struct dump **ret);
void dump_close(struct dump *dump);

const struct dump_desc *dump_describe(const struct dump *dump);

/*
 * Read len bytes of physical memory at paddr. Fails on the first page that cannot be read,
 * with VM_ERR_EXCLUDED / HOLE / BEYOND / INCOMPLETE / CORRUPT and err->addr = that page's address;
 * with zero_excluded, excluded and incomplete pages read as zeros instead.
 */
struct vm_error *dump_read_phys(struct dump *dump, uint64_t paddr, void *buf, size_t len,
				bool zero_excluded);

/*
 * Whether a whole-page read of the page holding paddr would succeed, without reading page data:
 * 0, or VM_ERR_EXCLUDED / HOLE / BEYOND / INCOMPLETE (CORRUPT only shows when decoding).
 */
enum vm_errcode dump_page_state(struct dump *dump, uint64_t paddr);

/* The VMCOREINFO text (not NUL-terminated in the dump; returned NUL-terminated), or NULL. */
const char *dump_vmcoreinfo(const struct dump *dump);

size_t dump_cpu_notes(const struct dump *dump, const struct dump_cpu_note **notes);

/* ELF PT_LOADs; 0 for kdump-compressed. */
size_t dump_segments(const struct dump *dump, const struct dump_segment **segs);

/* The note area as stored (ELF PT_NOTEs concatenated, or the kdump sub header notes); NULL if none. */
const void *dump_notes_raw(const struct dump *dump, size_t *len);

#endif
