/* Internals of the kernel model shared by kernel.c, layout.c, cpus.c, tasks.c, printk.c, sysinfo.c. */
#ifndef MEMMODEL_KERNEL_PRIV_H
#define MEMMODEL_KERNEL_PRIV_H

#include "kernel.h"
#include "symbols.h"
#include "x86_64.h"

#define KERNEL_TLB_SIZE 16
#define KERNEL_MAX_CPUS 8192
#define KERNEL_MAX_TASKS (1u << 22)

struct tlb_entry {
	uint64_t root, vbase, pbase, size; /* size 0 = empty */
};

/* struct member offsets from DWARF (all needed for tasks). */
struct task_offsets {
	uint64_t tasks, pid, tgid, comm, state, exit_state, signal, thread_node, thread_sp, stack, mm, cpu, flags;
	uint64_t signal_thread_head, mm_pgd, rq_idle, rq_curr;
	uint64_t frame_size, frame_r15, frame_r14, frame_r13, frame_r12, frame_bx, frame_bp, frame_ret;
};

struct kernel {
	struct dump *dump;
	struct vmlinux *vml;     /* NULL without vmlinux */
	const char *vmci;        /* VMCOREINFO text or NULL */
	struct kernel_info info;
	struct x86_paging paging;
	char layout_source[64];  /* how KASLR/phys_base were found, for `info` */
	bool bases_known;        /* page_offset (and with vmlinux vmalloc/vmemmap) read, not defaults */

	struct tlb_entry tlb[KERNEL_TLB_SIZE];
	unsigned tlb_next;
	unsigned tlb_last;         /* the entry that answered last: reads come in runs on one mapping */

	bool have_task_offsets;
	struct task_offsets off;
	uint64_t current_task_sym; /* per-CPU offset of current_task / pcpu_hot.current_task */

	int nr_cpu_slots;          /* entries in cpus[] */
	struct kernel_cpu *cpus;
	uint64_t online_mask_addr, present_mask_addr;

	bool tasks_loaded;
	struct kernel_task *tasks;
	size_t ntasks;
	uint64_t panic_task;       /* task_struct of the panicking task, 0 if unknown */
};

/* Runtime address of a vmlinux symbol (KASLR-shifted unless per-CPU). */
struct vm_error *kernel_symbol_runtime(struct kernel *k, const char *name, uint64_t *addr);
/* Physical-read callback for x86_walk over k->dump. */
struct vm_error *kernel_read_phys_cb(void *arg, uint64_t pa, void *buf, size_t len);
/* Kernel-virtual reads of small scalars. */
struct vm_error *kernel_read_kva(struct kernel *k, uint64_t va, void *buf, size_t len);
struct vm_error *kernel_read_u64(struct kernel *k, uint64_t va, uint64_t *val);
struct vm_error *kernel_read_u32(struct kernel *k, uint64_t va, uint32_t *val);

/* layout.c: KASLR, phys_base, paging mode, root table, direct map / vmalloc / vmemmap bases. */
struct vm_error *kernel_layout_init(struct kernel *k);
/* cpus.c: per-CPU offsets, note-to-CPU map, registers, panic CPU. */
struct vm_error *kernel_cpus_init(struct kernel *k);
/* tasks.c: DWARF offsets the task walk needs. */
struct vm_error *kernel_task_offsets_init(struct kernel *k);
/* printk.c: panic string and uptime from the printk ring buffer (best effort: leaves info empty). */
void kernel_printk_scan(struct kernel *k);
/* sysinfo.c: total RAM from the nodes' present pages (best effort). */
void kernel_memory_init(struct kernel *k);

#endif
