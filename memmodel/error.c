#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vm_error vm_error_nomem = { VM_ERR_NOMEM, 0, "out of memory" };

static struct vm_error *error_vcreate(enum vm_errcode code, uint64_t addr, const char *suffix,
				      const char *fmt, va_list ap)
{
	struct vm_error *err = malloc(sizeof(*err));
	char *msg = NULL;
	if (!err || vasprintf(&msg, fmt, ap) < 0) {
		free(err);
		return &vm_error_nomem;
	}
	if (suffix) {
		char *full;
		if (asprintf(&full, "%s: %s", msg, suffix) < 0) {
			free(msg);
			free(err);
			return &vm_error_nomem;
		}
		free(msg);
		msg = full;
	}
	err->code = code;
	err->addr = addr;
	err->message = msg;
	return err;
}

struct vm_error *vm_error_create(enum vm_errcode code, uint64_t addr, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct vm_error *err = error_vcreate(code, addr, NULL, fmt, ap);
	va_end(ap);
	return err;
}

struct vm_error *vm_error_errno(uint64_t addr, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	struct vm_error *err = error_vcreate(VM_ERR_OS, addr, strerror(saved), fmt, ap);
	va_end(ap);
	return err;
}

struct vm_error *vm_error_prefix(struct vm_error *err, const char *fmt, ...)
{
	if (err == &vm_error_nomem)
		return err;
	char *prefix, *full;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&prefix, fmt, ap);
	va_end(ap);
	if (n < 0)
		return err;
	if (asprintf(&full, "%s: %s", prefix, err->message) >= 0) {
		free(err->message);
		err->message = full;
	}
	free(prefix);
	return err;
}

void vm_error_destroy(struct vm_error *err)
{
	if (!err || err == &vm_error_nomem)
		return;
	free(err->message);
	free(err);
}

const char *vm_errcode_name(enum vm_errcode code)
{
	switch (code) {
	case VM_ERR_NOMEM: return "out of memory";
	case VM_ERR_OS: return "system error";
	case VM_ERR_FORMAT: return "bad format";
	case VM_ERR_UNSUPPORTED: return "unsupported";
	case VM_ERR_INVALID: return "invalid argument";
	case VM_ERR_NOT_FOUND: return "not found";
	case VM_ERR_EXCLUDED: return "excluded by the dump level";
	case VM_ERR_HOLE: return "memory hole";
	case VM_ERR_BEYOND: return "beyond the end of memory";
	case VM_ERR_INCOMPLETE: return "lost in an incomplete dump";
	case VM_ERR_CORRUPT: return "corrupt page data";
	case VM_ERR_NOT_MAPPED: return "not mapped";
	}
	return "unknown error";
}
