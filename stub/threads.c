#include "threads.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool threads_task_wanted(const struct kernel_task *t, enum tasks_mode mode)
{
	switch (mode) {
	case TASKS_ALL:
		return true;
	case TASKS_ACTIVE:
		return t->running_on >= 0 || t->state == 'R' || t->state == 'D';
	case TASKS_NONE:
		return false;
	}
	return false;
}

static const struct kernel_task *task_by_addr(const struct kernel_task *tasks, size_t n, uint64_t addr)
{
	for (size_t i = 0; addr && i < n; i++)
		if (tasks[i].addr == addr)
			return &tasks[i];
	return NULL;
}

/*
 * Extra info is "key=value" words after a human part, so scripts can parse it (gdbscripts'
 * target.thread_details): cpu=, task= (task_struct), running= (CPU it is current on, or -1),
 * and for CPU threads the current task's pid= and comm= (comm last: it may hold spaces).
 */
static void name_cpu_thread(struct stub_thread *th, const struct kernel_cpu *c,
			    const struct kernel_task *cur)
{
	const char *tag = c->panicking ? " [panic]" : !c->has_regs ? " [no registers]"
				     : !c->online ? " [offline]" : "";
	snprintf(th->name, sizeof(th->name), "CPU#%d%s", c->cpu, tag);
	if (cur)
		snprintf(th->extra, sizeof(th->extra), "cpu=%d task=0x%llx pid=%d comm=%s", c->cpu,
			 (unsigned long long)c->current_task, cur->pid, cur->comm);
	else if (c->current_task)
		snprintf(th->extra, sizeof(th->extra), "cpu=%d task=0x%llx", c->cpu,
			 (unsigned long long)c->current_task);
	else
		snprintf(th->extra, sizeof(th->extra), "cpu=%d", c->cpu);
}

static void name_task_thread(struct stub_thread *th, const struct kernel_task *t)
{
	snprintf(th->name, sizeof(th->name), "%d %s", t->pid, t->comm);
	snprintf(th->extra, sizeof(th->extra), "%c %s, cpu=%d running=%d task=0x%llx", t->state,
		 t->state_name ? t->state_name : "?", t->cpu, t->running_on, (unsigned long long)t->addr);
}

struct vm_error *threads_build(struct kernel *k, enum tasks_mode mode, struct thread_list *out,
			       struct vm_error **warning)
{
	memset(out, 0, sizeof(*out));
	*warning = NULL;
	if (!k)
		return NULL;
	const struct kernel_info *info = kernel_info(k);
	const struct kernel_task *tasks = NULL;
	size_t ntasks = 0;
	struct vm_error *err = kernel_tasks(k, &tasks, &ntasks);
	if (err) {
		*warning = vm_error_prefix(err, "task threads are not shown");
		tasks = NULL;
		ntasks = 0;
	}
	size_t ncpus = info->nr_cpus > 0 ? (size_t)info->nr_cpus : 0;
	size_t nwanted = 0;
	for (size_t i = 0; i < ntasks; i++)
		nwanted += threads_task_wanted(&tasks[i], mode);
	out->threads = calloc(ncpus + nwanted ? ncpus + nwanted : 1, sizeof(*out->threads));
	if (!out->threads)
		return &vm_error_nomem;
	out->ncpus = ncpus;
	for (size_t i = 0; i < ncpus; i++) {
		struct stub_thread *th = &out->threads[out->n++];
		struct kernel_cpu c;
		th->tid = i + 1;
		th->kind = THREAD_CPU;
		th->cpu = (int)i;
		err = kernel_cpu(k, (int)i, &c);
		if (err) {
			/* A placeholder keeps CPU numbering = thread numbering. */
			snprintf(th->name, sizeof(th->name), "CPU#%zu [unknown]", i);
			snprintf(th->extra, sizeof(th->extra), "%.90s", err->message);
			vm_error_destroy(err);
			th->regs_done = true;
			continue;
		}
		const struct kernel_task *cur = task_by_addr(tasks, ntasks, c.current_task);
		th->current_task = c.current_task;
		th->pgd_pa = cur ? cur->pgd_pa : 0;
		name_cpu_thread(th, &c, cur);
		th->regs_done = true;
		th->has_regs = c.has_regs;
		th->regs = c.regs;
		if (c.panicking && !out->panic_tid)
			out->panic_tid = th->tid;
	}
	for (size_t i = 0; i < ntasks; i++) {
		if (!threads_task_wanted(&tasks[i], mode))
			continue;
		struct stub_thread *th = &out->threads[out->n];
		th->tid = ++out->n;
		th->kind = THREAD_TASK;
		th->task = &tasks[i];
		th->cpu = tasks[i].cpu;
		th->pgd_pa = tasks[i].pgd_pa;
		name_task_thread(th, &tasks[i]);
	}
	if (!out->panic_tid && out->n)
		out->panic_tid = out->threads[0].tid;
	return NULL;
}

void threads_free(struct thread_list *l)
{
	free(l->threads);
	memset(l, 0, sizeof(*l));
}

struct stub_thread *threads_find(struct thread_list *l, uint64_t tid)
{
	/* tids are 1..n in list order. */
	if (tid == 0 || tid > l->n)
		return NULL;
	return &l->threads[tid - 1];
}

const struct x86_regs *threads_regs(struct kernel *k, struct stub_thread *t)
{
	if (!t->regs_done) {
		t->regs_done = true;
		struct vm_error *err = k && t->task ? kernel_task_regs(k, t->task, &t->regs)
						   : vm_error_create(VM_ERR_NOT_FOUND, 0, "no kernel");
		t->has_regs = err == NULL;
		vm_error_destroy(err);
	}
	return t->has_regs ? &t->regs : NULL;
}

void xml_escape(struct rsp_buf *out, const char *text)
{
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		switch (*p) {
		case '<': rsp_buf_adds(out, "&lt;"); break;
		case '>': rsp_buf_adds(out, "&gt;"); break;
		case '&': rsp_buf_adds(out, "&amp;"); break;
		case '"': rsp_buf_adds(out, "&quot;"); break;
		case '\'': rsp_buf_adds(out, "&apos;"); break;
		default:
			/* Control bytes are not allowed in XML 1.0 even as references. */
			rsp_buf_addc(out, *p < 0x20 ? '?' : (char)*p);
		}
	}
}

void threads_xml(const struct thread_list *l, struct rsp_buf *out)
{
	rsp_buf_adds(out, "<?xml version=\"1.0\"?>\n<threads>\n");
	for (size_t i = 0; i < l->n; i++) {
		const struct stub_thread *t = &l->threads[i];
		rsp_buf_printf(out, "<thread id=\"%llx\"", (unsigned long long)t->tid);
		if (t->cpu >= 0)
			rsp_buf_printf(out, " core=\"%d\"", t->cpu);
		rsp_buf_adds(out, " name=\"");
		xml_escape(out, t->name);
		rsp_buf_adds(out, "\">");
		xml_escape(out, t->extra);
		rsp_buf_adds(out, "</thread>\n");
	}
	rsp_buf_adds(out, "</threads>\n");
}
