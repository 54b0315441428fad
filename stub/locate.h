/*
 * Find the vmlinux (with debug info) that matches a dump, from its VMCOREINFO BUILD-ID and
 * OSRELEASE, in the usual places and the samples cache.
 */
#ifndef STUB_LOCATE_H
#define STUB_LOCATE_H

#include "../memmodel/dump.h"
#include "../memmodel/error.h"

/*
 * On success *path is a malloc'd path. On failure the error lists every place looked at and
 * why each did not match. cache_dir may be NULL.
 */
struct vm_error *locate_vmlinux(const struct dump *d, const char *cache_dir, char **path);

/* The GNU build-id of an ELF file as hex into buf (>= 41 bytes); error if it has none. */
struct vm_error *locate_elf_build_id(const char *path, char *buf, size_t buflen);

#endif
