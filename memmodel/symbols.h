/*
 * vmlinux: ELF symbols (link-time addresses) and the few DWARF facts the kernel model needs
 * (member offsets and type sizes), found by a targeted scan instead of indexing all DWARF.
 */
#ifndef MEMMODEL_SYMBOLS_H
#define MEMMODEL_SYMBOLS_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

struct vmlinux;

struct vm_error *vmlinux_open(const char *path, struct vmlinux **ret);
void vmlinux_close(struct vmlinux *v);

const char *vmlinux_path(const struct vmlinux *v);
/* GNU build-id as lowercase hex, "" when the file has none. */
const char *vmlinux_build_id(const struct vmlinux *v);

/* Link-time address (st_value) of a symbol; a global definition wins over local ones. */
struct vm_error *vmlinux_symbol(struct vmlinux *v, const char *name, uint64_t *addr);

/* Whether addr lies in the zero-based .data..percpu section (such symbols get no KASLR offset). */
bool vmlinux_is_percpu(const struct vmlinux *v, uint64_t addr);

/*
 * Byte offset and size of a member of struct/union `type`, through a dotted path ("thread.sp")
 * that may cross anonymous structs/unions. From the first complete definition in DWARF.
 */
struct vm_error *vmlinux_member(struct vmlinux *v, const char *type, const char *path, uint64_t *offset,
				uint64_t *size);
/* sizeof(struct/union type). */
struct vm_error *vmlinux_type_size(struct vmlinux *v, const char *type, uint64_t *size);

#endif
