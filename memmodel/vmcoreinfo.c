#include "vmcoreinfo.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Find the line "key=..." and return its value and length (to end of line). */
static bool find_value(const char *vmci, const char *key, const char **val, size_t *len)
{
	size_t kl = strlen(key);
	for (const char *line = vmci; line && *line;) {
		const char *eol = strchr(line, '\n');
		size_t ll = eol ? (size_t)(eol - line) : strlen(line);
		if (ll > kl && memcmp(line, key, kl) == 0 && line[kl] == '=') {
			*val = line + kl + 1;
			*len = ll - kl - 1;
			return true;
		}
		line = eol ? eol + 1 : NULL;
	}
	return false;
}

static struct vm_error *lookup(const char *vmci, const char *key, char *buf, size_t bufsize)
{
	const char *val;
	size_t len;
	if (!vmci || !find_value(vmci, key, &val, &len))
		return vm_error_create(VM_ERR_NOT_FOUND, 0, "VMCOREINFO has no %s", key);
	if (bufsize == 0)
		return NULL;
	if (len >= bufsize)
		len = bufsize - 1;
	memcpy(buf, val, len);
	buf[len] = '\0';
	return NULL;
}

struct vm_error *vmcoreinfo_value(const char *vmci, const char *key, char *buf, size_t bufsize)
{
	return lookup(vmci, key, buf, bufsize);
}

/* Parse the whole value (trailing spaces or CR tolerated) as an integer in `base` (0: auto). */
static struct vm_error *parse_int(const char *key, const char *s, int base, bool is_signed,
				  uint64_t *ret)
{
	char *end;
	errno = 0;
	const char *p = s;
	while (*p == ' ')
		p++;
	if (!*p || (!is_signed && *p == '-'))
		goto bad;
	uint64_t v;
	if (is_signed)
		v = (uint64_t)strtoll(p, &end, base);
	else
		v = strtoull(p, &end, base);
	if (errno || end == p)
		goto bad;
	while (*end == ' ' || *end == '\r')
		end++;
	if (*end)
		goto bad;
	*ret = v;
	return NULL;
bad:
	return vm_error_create(VM_ERR_FORMAT, 0, "VMCOREINFO %s=%s is not a valid %s number", key, s,
			       base == 16 ? "hexadecimal" : "decimal");
}

static struct vm_error *get_int(const char *vmci, const char *key, int base, bool is_signed,
				uint64_t *ret)
{
	char buf[128];
	struct vm_error *err = lookup(vmci, key, buf, sizeof(buf));
	if (err)
		return err;
	return parse_int(key, buf, base, is_signed, ret);
}

static struct vm_error *get_wrapped(const char *vmci, const char *kind, const char *name, int base,
				    bool is_signed, uint64_t *ret)
{
	char key[160];
	if ((size_t)snprintf(key, sizeof(key), "%s(%s)", kind, name) >= sizeof(key))
		return vm_error_create(VM_ERR_INVALID, 0, "VMCOREINFO key %s(%s) is too long", kind, name);
	return get_int(vmci, key, base, is_signed, ret);
}

struct vm_error *vmcoreinfo_symbol(const char *vmci, const char *name, uint64_t *ret)
{
	return get_wrapped(vmci, "SYMBOL", name, 16, false, ret);
}

struct vm_error *vmcoreinfo_number(const char *vmci, const char *name, int64_t *ret)
{
	char key[160], buf[128];
	if ((size_t)snprintf(key, sizeof(key), "NUMBER(%s)", name) >= sizeof(key))
		return vm_error_create(VM_ERR_INVALID, 0, "VMCOREINFO key NUMBER(%s) is too long", name);
	struct vm_error *err = lookup(vmci, key, buf, sizeof(buf));
	if (err)
		return err;
	uint64_t v;
	/* The kernel prints NUMBER() with %ld, but NUMBER(VMALLOC_START) with 0x%lx. */
	const char *p = buf;
	while (*p == ' ')
		p++;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		err = parse_int(key, p, 16, false, &v);
	else
		err = parse_int(key, p, 10, true, &v);
	if (!err)
		*ret = (int64_t)v;
	return err;
}

struct vm_error *vmcoreinfo_offset(const char *vmci, const char *member, uint64_t *ret)
{
	return get_wrapped(vmci, "OFFSET", member, 10, false, ret);
}

struct vm_error *vmcoreinfo_size(const char *vmci, const char *type, uint64_t *ret)
{
	return get_wrapped(vmci, "SIZE", type, 10, false, ret);
}

struct vm_error *vmcoreinfo_length(const char *vmci, const char *name, uint64_t *ret)
{
	return get_wrapped(vmci, "LENGTH", name, 10, false, ret);
}

struct vm_error *vmcoreinfo_kerneloffset(const char *vmci, uint64_t *ret)
{
	return get_int(vmci, "KERNELOFFSET", 16, false, ret);
}

struct vm_error *vmcoreinfo_pagesize(const char *vmci, uint64_t *ret)
{
	return get_int(vmci, "PAGESIZE", 10, false, ret);
}

struct vm_error *vmcoreinfo_crashtime(const char *vmci, int64_t *ret)
{
	uint64_t v;
	struct vm_error *err = get_int(vmci, "CRASHTIME", 10, true, &v);
	if (!err)
		*ret = (int64_t)v;
	return err;
}

struct vm_error *vmcoreinfo_osrelease(const char *vmci, char *buf, size_t bufsize)
{
	return lookup(vmci, "OSRELEASE", buf, bufsize);
}

struct vm_error *vmcoreinfo_build_id(const char *vmci, char *buf, size_t bufsize)
{
	char raw[160];
	struct vm_error *err = lookup(vmci, "BUILD-ID", raw, sizeof(raw));
	if (err)
		return err;
	size_t n = strlen(raw);
	while (n && (raw[n - 1] == ' ' || raw[n - 1] == '\r'))
		raw[--n] = '\0';
	if (n == 0 || n % 2)
		goto bad;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)raw[i]))
			goto bad;
	if (n >= bufsize)
		return vm_error_create(VM_ERR_INVALID, 0, "BUILD-ID of %zu hex digits does not fit in %zu bytes",
				       n, bufsize);
	for (size_t i = 0; i <= n; i++)
		buf[i] = (char)tolower((unsigned char)raw[i]);
	return NULL;
bad:
	return vm_error_create(VM_ERR_FORMAT, 0, "VMCOREINFO BUILD-ID=%s is not a hex string", raw);
}
