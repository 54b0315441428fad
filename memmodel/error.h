/* Errors are returned values carrying a code, the address or offset involved, and a message. */
#ifndef MEMMODEL_ERROR_H
#define MEMMODEL_ERROR_H

#include <stdint.h>

enum vm_errcode {
	VM_ERR_NOMEM = 1,
	VM_ERR_OS,          /* a system call failed; message has strerror */
	VM_ERR_FORMAT,      /* a file's structure is wrong (header, table, note) */
	VM_ERR_UNSUPPORTED, /* valid but not handled (format version, compression) */
	VM_ERR_INVALID,     /* bad argument from the caller */
	VM_ERR_NOT_FOUND,   /* symbol, type, task, CPU or file not found */
	/* Why a page cannot be read: the stub reports these to the client. */
	VM_ERR_EXCLUDED,    /* RAM left out by the dump level */
	VM_ERR_HOLE,        /* not RAM: a memory hole */
	VM_ERR_BEYOND,      /* beyond the end of physical memory */
	VM_ERR_INCOMPLETE,  /* lost: the dump was cut short while being written */
	VM_ERR_CORRUPT,     /* page data present but undecodable */
	VM_ERR_NOT_MAPPED,  /* virtual address not mapped by the page tables */
};

struct vm_error {
	enum vm_errcode code;
	uint64_t addr; /* address or file offset the error is about; 0 if none */
	char *message; /* complete sentence naming file/offset/address */
};

struct vm_error *vm_error_create(enum vm_errcode code, uint64_t addr, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* VM_ERR_OS with strerror(errno) appended. */
struct vm_error *vm_error_errno(uint64_t addr, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Prefix the message of err with more context; returns err (or the static nomem error). */
struct vm_error *vm_error_prefix(struct vm_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void vm_error_destroy(struct vm_error *err);
const char *vm_errcode_name(enum vm_errcode code);

/* Returned when allocation fails; vm_error_destroy ignores it. */
extern struct vm_error vm_error_nomem;

#endif
