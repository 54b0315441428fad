/*
 * The kernel in a dump: address translation (KASLR, page tables), CPUs, tasks and their registers.
 * Built from a struct dump plus vmlinux (DWARF via libdw). Lazy: a task's details and registers are
 * computed when asked for.
 */
#ifndef MEMMODEL_KERNEL_H
#define MEMMODEL_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dump.h"
#include "error.h"
#include "regs.h"

struct kernel;

/* Open the kernel model. vmlinux may be NULL: then only what VMCOREINFO allows works (no tasks). */
struct vm_error *kernel_open(struct dump *dump, const char *vmlinux, struct kernel **ret);
void kernel_close(struct kernel *k);

struct dump *kernel_dump(const struct kernel *k);

/* Facts about the machine, for `info` and `monitor sys`. */
struct kernel_info {
	char release[65];
	char version[65];        /* utsname.version, e.g. "#1 SMP PREEMPT_DYNAMIC Debian 6.1.x" */
	char machine[65];
	char nodename[65];
	char build_id[41];       /* hex, from VMCOREINFO BUILD-ID */
	uint64_t kaslr_offset;   /* KERNELOFFSET */
	uint64_t phys_base;
	uint64_t page_offset;    /* direct map base (page_offset_base) */
	uint64_t vmalloc_start, vmemmap_base;
	bool la57;               /* 5-level paging */
	uint64_t sme_mask;
	uint64_t root_pgt;       /* physical address of init_top_pgt */
	int nr_cpus;             /* CPU threads the stub shows: highest present/online CPU + 1, at least one per note */
	uint64_t total_ram;      /* bytes */
	int panic_cpu;           /* -1 if unknown */
	char panic_string[256];  /* what panic() was given, "" if unknown */
	uint64_t crash_time;     /* CRASHTIME, seconds since epoch; 0 if unknown */
	uint64_t uptime_ns;      /* at crash, 0 if unknown */
	bool have_vmlinux;
	/* The log line crash's `sys` shows as PANIC: "kernel BUG at ...", else the "Oops: ..." line, else
	 * "Kernel panic - not syncing: ..."; "" if none. */
	char panic_message[256];
	bool panic_from_oops;    /* panic_message is an Oops headline (crash adds "check log for details") */
};
const struct kernel_info *kernel_info(const struct kernel *k);

/* Address spaces a read can go through. */
enum kernel_as {
	KAS_KERNEL,   /* kernel virtual: kernel page tables */
	KAS_PHYS,     /* physical */
	KAS_USER,     /* user virtual through the page tables rooted at `pgd_pa` (a task's mm->pgd, physical) */
};

struct kernel_read_opts {
	enum kernel_as as;
	uint64_t pgd_pa;     /* KAS_USER only */
	bool zero_excluded;
};

/*
 * Read len bytes at addr. On failure nothing useful is in buf beyond *done bytes (which are valid),
 * and the error names the address and why (excluded, hole, beyond, not mapped at level N...).
 */
struct vm_error *kernel_read(struct kernel *k, const struct kernel_read_opts *o, uint64_t addr,
			     void *buf, size_t len, size_t *done);

/* One step of a page-table walk, for `monitor vtop`. */
struct kernel_walk {
	int nlevels;              /* entries filled */
	struct { const char *name; uint64_t table_pa, index, entry; } level[5];
	bool mapped;
	uint64_t pa;
	uint64_t page_size;
	const char *how;          /* "page tables" (every translation walks; a small TLB keeps it cheap) */
};
struct vm_error *kernel_vtop(struct kernel *k, uint64_t pgd_pa /* 0 = kernel */, uint64_t va,
			     struct kernel_walk *walk);

/* Symbols from vmlinux, runtime (KASLR-shifted) addresses; per-CPU symbols stay zero-based. */
struct vm_error *kernel_symbol(struct kernel *k, const char *name, uint64_t *addr);

/* CPUs: 0..nr_cpus-1. A CPU without a register note has has_regs == false. */
struct kernel_cpu {
	int cpu;
	bool has_regs;
	struct x86_regs regs;     /* gs_base = per_cpu_offset; unknown registers not valid */
	uint64_t per_cpu_offset;
	uint64_t current_task;    /* task_struct address, 0 if unknown */
	bool panicking;
	bool online;
};
struct vm_error *kernel_cpu(struct kernel *k, int cpu, struct kernel_cpu *out);

/*
 * Tasks, in a stable order (pid, then CPU for the pid-0 idle tasks): every thread of every process
 * on init_task's list plus each CPU's idle task. A list that loops or exceeds 4M entries is an error.
 */
struct kernel_task {
	uint64_t addr;            /* struct task_struct * */
	int32_t pid, tgid;
	char comm[17];
	char state;               /* 'R', 'S', 'D', 'T', 't', 'Z', 'X', 'I' (as ps) */
	const char *state_name;   /* "running", "sleeping", ... */
	int cpu;                  /* task_cpu() */
	int running_on;           /* CPU it is current on at the crash, or -1 */
	uint64_t stack;           /* task->stack */
	uint64_t mm;              /* 0 for kernel threads */
	uint64_t pgd_pa;          /* physical address of mm->pgd, 0 for kernel threads */
	bool kernel_thread;
};
/* Enumerate tasks (cached after the first call). */
struct vm_error *kernel_tasks(struct kernel *k, const struct kernel_task **tasks, size_t *n);
/* Registers of a task: its CPU's if running at the crash, else from thread.sp's inactive_task_frame. */
struct vm_error *kernel_task_regs(struct kernel *k, const struct kernel_task *t, struct x86_regs *out);

#endif
