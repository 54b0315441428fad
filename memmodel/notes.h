/* ELF note blobs of a dump: per-CPU register notes and VMCOREINFO. No file I/O here. */
#ifndef MEMMODEL_NOTES_H
#define MEMMODEL_NOTES_H

#include <stddef.h>
#include <stdint.h>

#include "dump.h"
#include "error.h"

#define NOTE_NT_PRSTATUS 1
#define NOTE_PRSTATUS_REG_OFFSET 112 /* offsetof(struct elf_prstatus, pr_reg) on x86_64 */
#define NOTE_PRSTATUS_PID_OFFSET 32
#define NOTE_QEMU_CPUSTATE_MIN 432   /* QEMUCPUState v1 without kernel_gs_base */

struct note_set {
	struct dump_cpu_note *cpus; /* NT_PRSTATUS notes in note order; QEMU notes paired by position */
	size_t ncpus;
	char *vmcoreinfo;           /* NUL-terminated copy of the VMCOREINFO descriptor, or NULL */
	size_t vmcoreinfo_len;
	size_t vmcoreinfo_desc_off; /* offset of that descriptor inside the blob */
};

/*
 * Parse a note blob (what a PT_NOTE or the kdump note area holds). `where` names the file and
 * `base` is the blob's file offset, both only for error messages. An all-zero note header ends the
 * blob early, as the kernel's final note does.
 */
struct vm_error *notes_parse(const uint8_t *buf, size_t len, const char *where, uint64_t base,
			     struct note_set *out);
void notes_free(struct note_set *set);

#endif
