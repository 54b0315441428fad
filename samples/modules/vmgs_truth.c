// SPDX-License-Identifier: GPL-2.0
/*
 * Prints the ground truth every scenario shares, from the panicking CPU
 * inside the panic notifier chain: panic string, CPU, current task, CPU
 * count, each CPU's current task and, with tasks=1, every task in the
 * system with its state and CPU at the moment of the crash.
 *
 * A die notifier adds the registers of the first oops (RIP, CR2, trap).
 *
 * Then it writes "panicked" to QEMU's ISA pvpanic port: QEMU, started with
 * -action panic=pause, stops the guest here for dump-guest-memory and kdump
 * goes on after `cont`, so both captures come from the same crash. (The
 * kernel's pvpanic driver reports "crash loaded" when kdump is armed, which
 * QEMU does not pause on.)
 */
#include <linux/cpumask.h>
#include <linux/io.h>
#include <linux/kdebug.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/notifier.h>
#include <linux/panic_notifier.h>
#include <linux/percpu.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/smp.h>
#include <linux/string.h>
#include <asm/special_insns.h>

#include "vmgs_truth.h"

static bool tasks;
module_param(tasks, bool, 0444);
MODULE_PARM_DESC(tasks, "print every task at panic time");

static ushort pvpanic_port;
module_param(pvpanic_port, ushort, 0444);
MODULE_PARM_DESC(pvpanic_port, "I/O port of QEMU's ISA pvpanic device, 0 for none");

#define PVPANIC_PANICKED 1

static unsigned int cpus_at_load;

static void print_task(const char *key, struct task_struct *p, int cpu)
{
	char comm[TASK_COMM_LEN * 6 + 8];

	VMGS_TRUTH_ITEM("%s", "\"pid\": %d, \"tgid\": %d, \"comm\": \"%s\", \"state\": \"%c\", \"cpu\": %d, \"on_cpu\": %d, \"kthread\": %d, \"task_struct\": \"0x%lx\"",
			key, p->pid, p->tgid,
			vmgs_json_str(comm, sizeof(comm), p->comm),
			task_state_to_char(p), cpu, READ_ONCE(p->on_cpu),
			!!(p->flags & PF_KTHREAD), (unsigned long)p);
}

static int vmgs_truth_panic(struct notifier_block *nb, unsigned long event,
			    void *message)
{
	char panic_string[256], comm[TASK_COMM_LEN * 6 + 8];
	size_t len = strlcpy(panic_string, message, sizeof(panic_string));
	struct task_struct *p, *t;
	int cpu;

	while (len && panic_string[len - 1] == '\n')
		panic_string[--len] = '\0';
	vmgs_json_str(panic_string, sizeof(panic_string), panic_string);
	VMGS_TRUTH("\"panic_string\": \"%s\", \"panic_cpu\": %d, \"pid\": %d, \"comm\": \"%s\", \"panic_task\": \"0x%lx\", \"nr_cpus\": %u, \"online_cpus_at_panic\": %u",
		   panic_string, raw_smp_processor_id(), current->pid,
		   vmgs_json_str(comm, sizeof(comm), current->comm),
		   (unsigned long)current, cpus_at_load, num_online_cpus());

	for_each_possible_cpu(cpu) {
		p = per_cpu(current_task, cpu);
		VMGS_TRUTH_ITEM("cpu_current", "\"cpu\": %d, \"pid\": %d, \"comm\": \"%s\", \"task_struct\": \"0x%lx\", \"per_cpu_offset\": \"0x%lx\"",
				cpu, p->pid,
				vmgs_json_str(comm, sizeof(comm), p->comm),
				(unsigned long)p, per_cpu_offset(cpu));
	}

	if (tasks) {
		rcu_read_lock();
		for_each_process_thread(p, t)
			print_task("tasks", t, task_cpu(t));
		rcu_read_unlock();
	}
	VMGS_TRUTH("\"truth_complete\": true");
	if (pvpanic_port)
		outb(PVPANIC_PANICKED, pvpanic_port);
	return NOTIFY_DONE;
}

static atomic_t oops_seen = ATOMIC_INIT(0);

static int vmgs_truth_die(struct notifier_block *nb, unsigned long event,
			  void *data)
{
	struct die_args *args = data;
	char why[96];

	if (event != DIE_OOPS || atomic_xchg(&oops_seen, 1))
		return NOTIFY_DONE;
	VMGS_TRUTH("\"oops_rip\": \"0x%lx\", \"oops_rip_symbol\": \"%pS\", \"oops_cr2\": \"0x%lx\", \"oops_trap\": %d, \"oops_error_code\": %ld, \"oops_sp\": \"0x%lx\", \"oops_die_string\": \"%s\"",
		   args->regs->ip, (void *)args->regs->ip, read_cr2(),
		   args->trapnr, args->err, args->regs->sp,
		   vmgs_json_str(why, sizeof(why), args->str));
	return NOTIFY_DONE;
}

static struct notifier_block vmgs_truth_die_nb = {
	.notifier_call = vmgs_truth_die,
	.priority = INT_MAX,
};

static struct notifier_block vmgs_truth_nb = {
	.notifier_call = vmgs_truth_panic,
	.priority = INT_MAX,
};

static int __init vmgs_truth_init(void)
{
	int err = register_die_notifier(&vmgs_truth_die_nb);

	if (err)
		return err;
	cpus_at_load = num_online_cpus();
	atomic_notifier_chain_register(&panic_notifier_list, &vmgs_truth_nb);
	return 0;
}

static void __exit vmgs_truth_exit(void)
{
	unregister_die_notifier(&vmgs_truth_die_nb);
	atomic_notifier_chain_unregister(&panic_notifier_list, &vmgs_truth_nb);
}

module_init(vmgs_truth_init);
module_exit(vmgs_truth_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vmcore-gdbserver samples: ground truth at panic time");
