/*
 * The thread list the stub shows: CPU threads first (tid = cpu + 1, QEMU's convention that the
 * kernel's lx-* scripts rely on), then task threads in the kernel layer's stable order. Built
 * once, on first use, so the list is identical on every query. Registers are computed when a
 * thread is first asked for and kept (a dump never changes).
 */
#ifndef STUB_THREADS_H
#define STUB_THREADS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../memmodel/kernel.h"
#include "rsp.h"

enum tasks_mode {
	TASKS_ALL,    /* every task */
	TASKS_ACTIVE, /* running at the crash, runnable, or in uninterruptible sleep */
	TASKS_NONE,   /* CPU threads only */
};

enum thread_kind { THREAD_CPU, THREAD_TASK };

struct stub_thread {
	uint64_t tid;             /* remote protocol thread id, > 0 */
	enum thread_kind kind;
	int cpu;                  /* CPU thread: its CPU; task: the CPU it last ran on (-1 unknown) */
	const struct kernel_task *task; /* task thread: the task; CPU thread: NULL */
	uint64_t current_task;    /* CPU thread: task_struct running there, 0 if unknown */
	uint64_t pgd_pa;          /* page tables for user addresses: the task's (or CPU's current) mm */
	char name[48];            /* "CPU#2 [panic]", "1234 nginx" */
	char extra[128];          /* state, CPU, task: see threads.c */
	bool regs_done;
	bool has_regs;
	struct x86_regs regs;
};

struct thread_list {
	struct stub_thread *threads;
	size_t n;
	size_t ncpus;             /* threads[0..ncpus) are CPU threads */
	uint64_t panic_tid;       /* thread of the panicking CPU, else the first */
};

/*
 * Build the list from the kernel model. k may be NULL (no kernel: empty list). A failure to
 * enumerate tasks keeps the CPU threads and is returned as a warning-level error in *warning.
 */
struct vm_error *threads_build(struct kernel *k, enum tasks_mode mode, struct thread_list *out,
			       struct vm_error **warning);
void threads_free(struct thread_list *l);

struct stub_thread *threads_find(struct thread_list *l, uint64_t tid);

/* Registers of a thread (computed once); NULL if nobody can know them. */
const struct x86_regs *threads_regs(struct kernel *k, struct stub_thread *t);

/* The <threads> document of qXfer:threads:read. */
void threads_xml(const struct thread_list *l, struct rsp_buf *out);

/* Escape text for an XML attribute or element body. */
void xml_escape(struct rsp_buf *out, const char *text);

/* Whether a task belongs in the list for a mode. */
bool threads_task_wanted(const struct kernel_task *t, enum tasks_mode mode);

#endif
