#include "regs.h"

#include <string.h>

/* gdb register -> pr_reg index (user_regs_struct), for the general registers. */
static const struct { enum x86_reg reg; int pr; } prstatus_map[] = {
	{ REG_RAX, 10 }, { REG_RBX, 5 },  { REG_RCX, 11 }, { REG_RDX, 12 }, { REG_RSI, 13 }, { REG_RDI, 14 },
	{ REG_RBP, 4 },  { REG_RSP, 19 }, { REG_R8, 9 },   { REG_R9, 8 },   { REG_R10, 7 },  { REG_R11, 6 },
	{ REG_R12, 3 },  { REG_R13, 2 },  { REG_R14, 1 },  { REG_R15, 0 },  { REG_RIP, 16 }, { REG_EFLAGS, 18 },
	{ REG_CS, 17 },  { REG_SS, 20 },  { REG_DS, 23 },  { REG_ES, 24 },  { REG_FS, 25 },  { REG_GS, 26 },
	{ REG_FS_BASE, 21 }, { REG_ORIG_RAX, 15 },
};

void regs_from_prstatus(const uint64_t pr_reg[27], struct x86_regs *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < sizeof(prstatus_map) / sizeof(prstatus_map[0]); i++)
		regs_set(out, prstatus_map[i].reg, pr_reg[prstatus_map[i].pr]);
	/* The kernel saves the inactive GS base; in kernel mode that is what MSR_KERNEL_GS_BASE holds. */
	if ((pr_reg[17] & 3) == 0)
		regs_set(out, REG_K_GS_BASE, pr_reg[22]);
}

void regs_from_qemu(const struct dump_qemu_cpu *q, struct x86_regs *out)
{
	/* QEMU's general-register order: rax rbx rcx rdx rsi rdi rsp rbp r8..r15. */
	static const enum x86_reg gpr[16] = {
		REG_RAX, REG_RBX, REG_RCX, REG_RDX, REG_RSI, REG_RDI, REG_RSP, REG_RBP,
		REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15,
	};
	/* Segment order in the note: cs ds es fs gs ss. */
	static const enum x86_reg seg[6] = { REG_CS, REG_DS, REG_ES, REG_FS, REG_GS, REG_SS };
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < 16; i++)
		regs_set(out, gpr[i], q->gpr[i]);
	regs_set(out, REG_RIP, q->rip);
	regs_set(out, REG_EFLAGS, q->rflags);
	for (int i = 0; i < 6; i++)
		regs_set(out, seg[i], q->seg[i].selector);
	regs_set(out, REG_FS_BASE, q->seg[3].base);
	regs_set(out, REG_GS_BASE, q->seg[4].base);
	if (q->has_kernel_gs_base)
		regs_set(out, REG_K_GS_BASE, q->kernel_gs_base);
	regs_set(out, REG_CR0, q->cr[0]);
	regs_set(out, REG_CR2, q->cr[2]);
	regs_set(out, REG_CR3, q->cr[3]);
	regs_set(out, REG_CR4, q->cr[4]);
}
