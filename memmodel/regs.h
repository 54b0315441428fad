/* x86_64 register file in the order of the stub's target description (gdb's amd64 numbering). */
#ifndef MEMMODEL_REGS_H
#define MEMMODEL_REGS_H

#include <stdint.h>

#include "dump.h"

enum x86_reg {
	REG_RAX, REG_RBX, REG_RCX, REG_RDX, REG_RSI, REG_RDI, REG_RBP, REG_RSP,
	REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15,
	REG_RIP, REG_EFLAGS,
	REG_CS, REG_SS, REG_DS, REG_ES, REG_FS, REG_GS,
	REG_FS_BASE, REG_GS_BASE, REG_K_GS_BASE,
	REG_CR0, REG_CR2, REG_CR3, REG_CR4, REG_CR8, REG_EFER,
	REG_ORIG_RAX,
	X86_NREGS /* x87/SSE are never in a dump: the stub reports them unavailable */
};

struct x86_regs {
	uint64_t v[X86_NREGS];
	uint64_t valid; /* bit (1 << reg) set when v[reg] is known */
};

static inline void regs_set(struct x86_regs *r, enum x86_reg reg, uint64_t val)
{
	r->v[reg] = val;
	r->valid |= 1ull << reg;
}

static inline int regs_has(const struct x86_regs *r, enum x86_reg reg)
{
	return (r->valid >> reg) & 1;
}

/*
 * Registers of a kernel-written NT_PRSTATUS pr_reg (user_regs_struct order) into gdb order. gs_base
 * is left out: pr_reg[22] is the inactive GS base, which is k_gs_base (MSR_KERNEL_GS_BASE) when the
 * saved context is in kernel mode.
 */
void regs_from_prstatus(const uint64_t pr_reg[27], struct x86_regs *out);
/* Registers of a QEMU CPU note, control registers included; gs_base is the active GS base. */
void regs_from_qemu(const struct dump_qemu_cpu *q, struct x86_regs *out);

#endif
