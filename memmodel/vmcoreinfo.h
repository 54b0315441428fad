/*
 * Lookups in VMCOREINFO text ("KEY=value" lines). Each follows the kernel's printf format for its
 * key: SYMBOL() and KERNELOFFSET are hex without 0x; NUMBER() is signed decimal (NUMBER(VMALLOC_START)
 * alone carries 0x, so a 0x prefix is honoured); OFFSET()/SIZE()/LENGTH()/PAGESIZE are decimal.
 * All return NULL on success, VM_ERR_NOT_FOUND when the key is absent, VM_ERR_FORMAT when the
 * value does not parse. `vmci` is NUL-terminated (as dump_vmcoreinfo() returns it).
 */
#ifndef MEMMODEL_VMCOREINFO_H
#define MEMMODEL_VMCOREINFO_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Raw value of `key` (the text before '='), copied NUL-terminated into buf (truncated to fit). */
struct vm_error *vmcoreinfo_value(const char *vmci, const char *key, char *buf, size_t bufsize);

struct vm_error *vmcoreinfo_symbol(const char *vmci, const char *name, uint64_t *ret);  /* SYMBOL(name) */
struct vm_error *vmcoreinfo_number(const char *vmci, const char *name, int64_t *ret);   /* NUMBER(name) */
struct vm_error *vmcoreinfo_offset(const char *vmci, const char *member, uint64_t *ret); /* OFFSET(s.f) */
struct vm_error *vmcoreinfo_size(const char *vmci, const char *type, uint64_t *ret);    /* SIZE(t) */
struct vm_error *vmcoreinfo_length(const char *vmci, const char *name, uint64_t *ret);  /* LENGTH(n) */
struct vm_error *vmcoreinfo_kerneloffset(const char *vmci, uint64_t *ret);
struct vm_error *vmcoreinfo_pagesize(const char *vmci, uint64_t *ret);
struct vm_error *vmcoreinfo_crashtime(const char *vmci, int64_t *ret);
/* OSRELEASE into buf[65]. */
struct vm_error *vmcoreinfo_osrelease(const char *vmci, char *buf, size_t bufsize);
/* BUILD-ID as lowercase hex into buf (41 bytes for a 20-byte id). */
struct vm_error *vmcoreinfo_build_id(const char *vmci, char *buf, size_t bufsize);

#endif
