/*
 * Tasks: every thread of every process on init_task's list plus each CPU's idle task, found with
 * bounded, cycle-checked list walks; registers of sleeping tasks from their inactive_task_frame.
 */
#include "addrmap.h"
#include "growarray.h"
#include "kernel_priv.h"

#include <stdlib.h>
#include <string.h>

#define PF_KTHREAD 0x00200000u

struct member_req {
	const char *type, *path;
	uint64_t *dst;
};

struct vm_error *kernel_task_offsets_init(struct kernel *k)
{
	struct task_offsets *o = &k->off;
	const struct member_req reqs[] = {
		{ "task_struct", "tasks", &o->tasks },
		{ "task_struct", "pid", &o->pid },
		{ "task_struct", "tgid", &o->tgid },
		{ "task_struct", "comm", &o->comm },
		{ "task_struct", "__state", &o->state },
		{ "task_struct", "exit_state", &o->exit_state },
		{ "task_struct", "signal", &o->signal },
		{ "task_struct", "thread_node", &o->thread_node },
		{ "task_struct", "thread.sp", &o->thread_sp },
		{ "task_struct", "stack", &o->stack },
		{ "task_struct", "mm", &o->mm },
		{ "task_struct", "flags", &o->flags },
		{ "task_struct", "thread_info.cpu", &o->cpu },
		{ "signal_struct", "thread_head", &o->signal_thread_head },
		{ "mm_struct", "pgd", &o->mm_pgd },
		{ "rq", "idle", &o->rq_idle },
		{ "inactive_task_frame", "r15", &o->frame_r15 },
		{ "inactive_task_frame", "r14", &o->frame_r14 },
		{ "inactive_task_frame", "r13", &o->frame_r13 },
		{ "inactive_task_frame", "r12", &o->frame_r12 },
		{ "inactive_task_frame", "bx", &o->frame_bx },
		{ "inactive_task_frame", "bp", &o->frame_bp },
		{ "inactive_task_frame", "ret_addr", &o->frame_ret },
	};
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		struct vm_error *err = vmlinux_member(k->vml, reqs[i].type, reqs[i].path, reqs[i].dst, NULL);
		if (err)
			return vm_error_prefix(err, "kernel model");
	}
	struct vm_error *err = vmlinux_type_size(k->vml, "inactive_task_frame", &o->frame_size);
	if (err)
		return vm_error_prefix(err, "kernel model");
	k->have_task_offsets = true;
	return NULL;
}

static const struct {
	char c;
	const char *name;
} task_states[] = {
	{ 'R', "running" }, { 'S', "sleeping" }, { 'D', "disk sleep" }, { 'T', "stopped" },
	{ 't', "tracing stop" }, { 'X', "dead" }, { 'Z', "zombie" }, { 'P', "parked" }, { 'I', "idle" },
};

/* As the kernel's task_state_index(): the lowest 7 state bits, with TASK_IDLE reported as 'I'. */
static void set_state(struct kernel_task *t, uint32_t state, uint32_t exit_state)
{
	const uint32_t report = 0x7f, task_idle = 0x402, rtlock_wait = 0x1000;
	uint32_t bits = (state | exit_state) & report;
	int index;
	if (state == task_idle)
		index = 8;
	else if (state == rtlock_wait)
		index = 2;
	else
		index = bits ? 32 - __builtin_clz(bits) : 0;
	t->state = task_states[index].c;
	t->state_name = task_states[index].name;
}

struct task_list {
	struct kernel_task *v;
	size_t n, cap;
	struct addr_map seen;
};

static struct vm_error *read_task(struct kernel *k, uint64_t addr, struct kernel_task *t)
{
	const struct task_offsets *o = &k->off;
	uint32_t pid, tgid, state, exit_state, cpu, flags;
	struct vm_error *err;
	memset(t, 0, sizeof(*t));
	t->addr = addr;
	if ((err = kernel_read_u32(k, addr + o->pid, &pid)) || (err = kernel_read_u32(k, addr + o->tgid, &tgid)) ||
	    (err = kernel_read_u32(k, addr + o->state, &state)) ||
	    (err = kernel_read_u32(k, addr + o->exit_state, &exit_state)) ||
	    (err = kernel_read_u32(k, addr + o->cpu, &cpu)) || (err = kernel_read_u32(k, addr + o->flags, &flags)) || (err = kernel_read_kva(k, addr + o->comm, t->comm, 16)) ||
	    (err = kernel_read_u64(k, addr + o->stack, &t->stack)) || (err = kernel_read_u64(k, addr + o->mm, &t->mm)))
		return vm_error_prefix(err, "task_struct at 0x%llx", (unsigned long long)addr);
	t->pid = (int32_t)pid;
	t->tgid = (int32_t)tgid;
	t->comm[16] = 0;
	t->cpu = (int)cpu;
	set_state(t, state, exit_state);
	/* Not mm == NULL: an exited (zombie) user task has dropped its mm too. */
	t->kernel_thread = (flags & PF_KTHREAD) != 0;
	t->running_on = -1;
	for (int c = 0; c < k->nr_cpu_slots; c++)
		if (k->cpus[c].current_task == addr)
			t->running_on = c;
	if (t->mm) {
		uint64_t pgd;
		if ((err = kernel_read_u64(k, t->mm + o->mm_pgd, &pgd)))
			return vm_error_prefix(err, "mm_struct of task %d at 0x%llx", t->pid, (unsigned long long)addr);
		struct kernel_walk walk;
		if ((err = kernel_vtop(k, 0, pgd, &walk)))
			return vm_error_prefix(err, "pgd of task %d", t->pid);
		t->pgd_pa = walk.pa;
	}
	return NULL;
}

static struct vm_error *add_task(struct kernel *k, struct task_list *l, uint64_t addr, bool *added)
{
	bool seen;
	*added = false;
	if (!addr_map_insert(&l->seen, addr, 0, &seen, NULL))
		return &vm_error_nomem;
	if (seen)
		return NULL;
	if (l->n >= KERNEL_MAX_TASKS)
		return vm_error_create(VM_ERR_FORMAT, addr, "more than %u tasks: the task list is corrupt",
				       KERNEL_MAX_TASKS);
	struct vm_error *err = grow_array(&l->v, &l->cap, l->n + 1, sizeof(*l->v));
	if (err)
		return err;
	err = read_task(k, addr, &l->v[l->n]);
	if (err)
		return err;
	l->n++;
	*added = true;
	return NULL;
}

/*
 * Walk the circular list whose head is at `head`, calling visit on each container (entry - link_off).
 * A list longer than KERNEL_MAX_TASKS, or that comes back to an entry other than its head, is corrupt.
 */
static struct vm_error *walk_list(struct kernel *k, uint64_t head, uint64_t link_off, struct task_list *l,
				  struct addr_map *entries, const char *what)
{
	uint64_t pos;
	struct vm_error *err = kernel_read_u64(k, head, &pos);
	for (size_t steps = 0; !err && pos != head; steps++) {
		bool seen, added;
		if (steps >= KERNEL_MAX_TASKS)
			return vm_error_create(VM_ERR_FORMAT, head, "%s at 0x%llx: more than %u entries, corrupt", what,
					       (unsigned long long)head, KERNEL_MAX_TASKS);
		if (!addr_map_insert(entries, pos, 0, &seen, NULL))
			return &vm_error_nomem;
		if (seen)
			return vm_error_create(VM_ERR_FORMAT, pos,
					       "%s at 0x%llx loops: entry 0x%llx seen twice without returning to the head",
					       what, (unsigned long long)head, (unsigned long long)pos);
		if ((err = add_task(k, l, pos - link_off, &added)))
			return err;
		err = kernel_read_u64(k, pos, &pos);
	}
	if (err)
		return vm_error_prefix(err, "walking %s at 0x%llx", what, (unsigned long long)head);
	return NULL;
}

static int compare_tasks(const void *a, const void *b)
{
	const struct kernel_task *x = a, *y = b;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	/* Idle tasks share pid 0: order them by CPU. */
	if (x->cpu != y->cpu)
		return x->cpu < y->cpu ? -1 : 1;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static struct vm_error *load_tasks(struct kernel *k)
{
	const struct task_offsets *o = &k->off;
	struct task_list l = { 0 };
	struct addr_map procs = { 0 }, threads = { 0 };
	uint64_t init_task, runqueues;
	bool added;
	struct vm_error *err = kernel_symbol_runtime(k, "init_task", &init_task);
	if (!err)
		err = add_task(k, &l, init_task, &added);
	/* Idle tasks of the other CPUs are on no list: take them from each runqueue. */
	if (!err && !(err = kernel_symbol_runtime(k, "runqueues", &runqueues))) {
		for (int c = 0; c < k->nr_cpu_slots && !err; c++) {
			uint64_t idle;
			/* Offline CPUs count too: panic takes the other CPUs offline before the dump. */
			if (!k->cpus[c].per_cpu_offset)
				continue;
			err = kernel_read_u64(k, runqueues + k->cpus[c].per_cpu_offset + o->rq_idle, &idle);
			if (!err && idle)
				err = add_task(k, &l, idle, &added);
		}
	}
	if (!err)
		err = walk_list(k, init_task + o->tasks, o->tasks, &l, &procs, "init_task.tasks");
	/* Threads: each process's signal->thread_head lists all its threads (leader included). */
	size_t nprocs = l.n;
	for (size_t i = 0; i < nprocs && !err; i++) {
		uint64_t signal;
		if (l.v[i].pid == 0)
			continue;
		err = kernel_read_u64(k, l.v[i].addr + o->signal, &signal);
		if (!err && signal)
			err = walk_list(k, signal + o->signal_thread_head, o->thread_node, &l, &threads,
					"signal->thread_head");
	}
	addr_map_free(&procs);
	addr_map_free(&threads);
	addr_map_free(&l.seen);
	if (err) {
		free(l.v);
		return err;
	}
	qsort(l.v, l.n, sizeof(*l.v), compare_tasks);
	k->tasks = l.v;
	k->ntasks = l.n;
	k->tasks_loaded = true;
	return NULL;
}

struct vm_error *kernel_tasks(struct kernel *k, const struct kernel_task **tasks, size_t *n)
{
	if (!k->have_task_offsets)
		return vm_error_create(VM_ERR_NOT_FOUND, 0, "tasks need vmlinux with DWARF");
	if (!k->tasks_loaded) {
		struct vm_error *err = load_tasks(k);
		if (err)
			return err;
	}
	*tasks = k->tasks;
	*n = k->ntasks;
	return NULL;
}

struct vm_error *kernel_task_regs(struct kernel *k, const struct kernel_task *t, struct x86_regs *out)
{
	const struct task_offsets *o = &k->off;
	memset(out, 0, sizeof(*out));
	if (t->running_on >= 0 && k->cpus[t->running_on].has_regs) {
		*out = k->cpus[t->running_on].regs;
		return NULL;
	}
	/* An exited task gives its stack back on its last switch: thread.sp points into freed memory. */
	if (!t->stack)
		return vm_error_create(VM_ERR_NOT_FOUND, t->addr, "task %d has no kernel stack (it has exited)", t->pid);
	uint64_t sp;
	struct vm_error *err = kernel_read_u64(k, t->addr + o->thread_sp, &sp);
	if (err)
		return vm_error_prefix(err, "thread.sp of task %d", t->pid);
	uint64_t frame[16];
	if (o->frame_size > sizeof(frame))
		return vm_error_create(VM_ERR_UNSUPPORTED, 0, "inactive_task_frame of %llu bytes",
				       (unsigned long long)o->frame_size);
	err = kernel_read_kva(k, sp, frame, o->frame_size);
	if (err)
		return vm_error_prefix(err, "inactive_task_frame of task %d", t->pid);
	const char *f = (const char *)frame;
	const struct { enum x86_reg reg; uint64_t off; } from_frame[] = {
		{ REG_R15, o->frame_r15 }, { REG_R14, o->frame_r14 }, { REG_R13, o->frame_r13 }, { REG_R12, o->frame_r12 },
		{ REG_RBX, o->frame_bx },  { REG_RBP, o->frame_bp },  { REG_RIP, o->frame_ret },
	};
	for (size_t i = 0; i < sizeof(from_frame) / sizeof(from_frame[0]); i++) {
		uint64_t v;
		memcpy(&v, f + from_frame[i].off, sizeof(v));
		regs_set(out, from_frame[i].reg, v);
	}
	regs_set(out, REG_RSP, sp + o->frame_size);
	if (t->cpu >= 0 && t->cpu < k->nr_cpu_slots)
		regs_set(out, REG_GS_BASE, k->cpus[t->cpu].per_cpu_offset);
	return NULL;
}
