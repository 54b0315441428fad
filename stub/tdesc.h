/*
 * x86_64 target description: the register list in `g` packet order and the target.xml that
 * describes it. gdb knows the target as i386:x86-64 from the org.gnu.gdb.i386.{core,sse,segments}
 * features; k_gs_base, cr0/2/3/4/8 and efer sit in a feature of our own and are reachable as
 * $cr3 etc. Registers a dump never holds (x87, SSE) are always reported unavailable.
 */
#ifndef STUB_TDESC_H
#define STUB_TDESC_H

#include <stdbool.h>
#include <stddef.h>

#include "../memmodel/regs.h"
#include "rsp.h"

struct tdesc_reg {
	const char *name;
	unsigned bits;
	int source;        /* enum x86_reg, or -1: never known */
};

/* Registers in gdb remote numbering (= g packet order). */
size_t tdesc_regs(const struct tdesc_reg **regs);

/* The whole target.xml (static, NUL-terminated). */
const char *tdesc_xml(void);

/* Hex for a `g` reply: every register, unknown ones as "xx" per byte. */
void tdesc_encode_g(const struct x86_regs *r, struct rsp_buf *out);
/* Hex for a `p` reply; false if regno does not exist. */
bool tdesc_encode_p(const struct x86_regs *r, unsigned long regno, struct rsp_buf *out);

#endif
