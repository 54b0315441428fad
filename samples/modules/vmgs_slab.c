// SPDX-License-Identifier: GPL-2.0
/*
 * slab-double-free: kmalloc-8 objects freed twice out of order, as a TOA
 * module did. With SLAB_FREELIST_HARDENED only an immediate double free is
 * caught (object == freelist head), so kfree(x), kfree(y), kfree(x) leaves
 * the per-CPU freelist as the cycle x -> y -> x.
 *
 *  - On CPU 1 a kthread makes that cycle and then spins with interrupts off,
 *    so CPU 1's kmalloc-8 freelist still holds the duplicate in the dump.
 *  - On CPU 0 the module repeats it and goes on like the buggy user: x is
 *    handed out, written to (its encoded free pointer is overwritten), y,
 *    then x a second time; the freelist head is now garbage decoded from
 *    that write and the next kmalloc faults on it inside __kmalloc.
 *
 * The module also keeps alloc_percpu statistics with different values on
 * each CPU. Every address and value is printed as truth before the crash.
 */
#include <linux/cpumask.h>
#include <linux/delay.h>
#include <linux/kernel.h>
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/slab.h>
#include <linux/swab.h>

#include "vmgs_slub.h"
#include "vmgs_truth.h"

struct vmgs_slab_stats {
	u64 allocs;
	u64 frees;
	u64 double_frees;
};

/* Globals so that a debugger finds them by name in the dump. */
static struct vmgs_slab_stats __percpu *vmgs_slab_stats;
static struct kmem_cache *vmgs_slab_cache;
static void *vmgs_slab_cpu1_objects[2];
static void *vmgs_slab_cpu0_objects[2];
static int vmgs_slab_cpu1_ready;
/* Not a constant, so kmalloc() goes through __kmalloc as a variable-size caller would. */
static size_t vmgs_slab_size = 8;

#define TOA_MARKER 0x00000000414f5421ULL

static void *decode_free_pointer(struct kmem_cache *s, void *object)
{
	unsigned long slot = (unsigned long)object + s->offset;

	return (void *)(*(unsigned long *)slot ^ s->random ^ swab64(slot));
}

static void count(int what)
{
	struct vmgs_slab_stats *st = this_cpu_ptr(vmgs_slab_stats);

	if (what == 0)
		st->allocs++;
	else if (what == 1)
		st->frees++;
	else
		st->double_frees++;
}

/* kfree(x), kfree(y), kfree(x) on two objects of this CPU's slab; irqs are off. */
static void double_free_pair(void *objs[2])
{
	struct kmem_cache_cpu *c = raw_cpu_ptr(vmgs_slab_cache->cpu_slab);

	for (;;) {
		objs[0] = kmalloc(READ_ONCE(vmgs_slab_size), GFP_ATOMIC);
		objs[1] = kmalloc(READ_ONCE(vmgs_slab_size), GFP_ATOMIC);
		count(0);
		count(0);
		/* Both must sit in the CPU slab, or kfree takes the slow path. */
		if ((void *)virt_to_head_page(objs[0]) == (void *)c->slab &&
		    (void *)virt_to_head_page(objs[1]) == (void *)c->slab)
			break;
		kfree(objs[0]);
		kfree(objs[1]);
	}
	kfree(objs[0]);
	kfree(objs[1]);
	kfree(objs[0]);
	count(1);
	count(1);
	count(2);
}

static noinline void print_freelist(const char *key, int cpu)
{
	struct kmem_cache_cpu *c = per_cpu_ptr(vmgs_slab_cache->cpu_slab, cpu);
	void *p = c->freelist, *chain[4];
	int i;

	for (i = 0; i < 4; i++) {
		chain[i] = p;
		p = decode_free_pointer(vmgs_slab_cache, p);
	}
	VMGS_TRUTH("\"%s\": {\"cpu\": %d, \"kmem_cache_cpu\": \"0x%lx\", \"freelist\": [\"0x%lx\", \"0x%lx\", \"0x%lx\", \"0x%lx\"]}",
		   key, cpu, (unsigned long)c, (unsigned long)chain[0],
		   (unsigned long)chain[1], (unsigned long)chain[2],
		   (unsigned long)chain[3]);
}

static int vmgs_slab_cpu1(void *unused)
{
	local_irq_disable();
	double_free_pair(vmgs_slab_cpu1_objects);
	WRITE_ONCE(vmgs_slab_cpu1_ready, 1);
	/* Keep CPU 1's freelist as it is until the crash stops this CPU. */
	for (;;)
		cpu_relax();
	return 0;
}

static int __init vmgs_slab_init(void)
{
	struct task_struct *t;
	void *first, *second, *again, *next;
	unsigned long flags;
	int cpu, i;

	if (num_online_cpus() < 2)
		return -ENODEV;
	vmgs_slab_cache = kmalloc_caches[KMALLOC_NORMAL][kmalloc_index(8)];
	vmgs_slab_stats = alloc_percpu(struct vmgs_slab_stats);
	if (!vmgs_slab_stats)
		return -ENOMEM;
	for_each_possible_cpu(cpu) {
		struct vmgs_slab_stats *st = per_cpu_ptr(vmgs_slab_stats, cpu);

		st->allocs = 1000 * (cpu + 1) + 17;
		st->frees = 900 * (cpu + 1) + 3;
		st->double_frees = 0;
	}

	t = kthread_create(vmgs_slab_cpu1, NULL, "vmgs-slab-cpu1");
	if (IS_ERR(t))
		return PTR_ERR(t);
	kthread_bind(t, 1);
	wake_up_process(t);
	while (!READ_ONCE(vmgs_slab_cpu1_ready))
		msleep(10);

	local_irq_save(flags);
	if (raw_smp_processor_id() == 1) {
		local_irq_restore(flags);
		return -EBUSY;
	}
	double_free_pair(vmgs_slab_cpu0_objects);
	first = kmalloc(READ_ONCE(vmgs_slab_size), GFP_ATOMIC);
	*(u64 *)first = TOA_MARKER;
	second = kmalloc(READ_ONCE(vmgs_slab_size), GFP_ATOMIC);
	again = kmalloc(READ_ONCE(vmgs_slab_size), GFP_ATOMIC);
	count(0);
	count(0);
	count(0);
	next = raw_cpu_ptr(vmgs_slab_cache->cpu_slab)->freelist;

	VMGS_TRUTH("\"slab_cache\": \"0x%lx\", \"slab_cache_name\": \"%s\", \"object_size\": %u, \"freelist_offset\": %u, \"freelist_random\": \"0x%lx\"",
		   (unsigned long)vmgs_slab_cache, vmgs_slab_cache->name,
		   vmgs_slab_cache->object_size, vmgs_slab_cache->offset,
		   vmgs_slab_cache->random);
	VMGS_TRUTH("\"duplicate_cpu\": 1, \"duplicated_objects\": [\"0x%lx\", \"0x%lx\"], \"crash_cpu\": %d, \"crash_objects\": [\"0x%lx\", \"0x%lx\"], \"allocated\": [\"0x%lx\", \"0x%lx\", \"0x%lx\"], \"allocating_object\": \"0x%lx\", \"toa_marker\": \"0x%llx\"",
		   (unsigned long)vmgs_slab_cpu1_objects[0],
		   (unsigned long)vmgs_slab_cpu1_objects[1],
		   raw_smp_processor_id(),
		   (unsigned long)vmgs_slab_cpu0_objects[0],
		   (unsigned long)vmgs_slab_cpu0_objects[1],
		   (unsigned long)first, (unsigned long)second,
		   (unsigned long)again, (unsigned long)next, TOA_MARKER);
	print_freelist("duplicate_freelist", 1);
	VMGS_TRUTH("\"percpu_stats\": \"0x%lx\", \"percpu_stats_symbol\": \"vmgs_slab_stats\"",
		   (unsigned long)vmgs_slab_stats);
	for_each_possible_cpu(cpu) {
		struct vmgs_slab_stats *st = per_cpu_ptr(vmgs_slab_stats, cpu);

		VMGS_TRUTH_ITEM("percpu_stats_values", "\"cpu\": %d, \"address\": \"0x%lx\", \"allocs\": %llu, \"frees\": %llu, \"double_frees\": %llu",
				cpu, (unsigned long)st, st->allocs, st->frees,
				st->double_frees);
	}
	for (i = 0; i < 2; i++)
		kmalloc(READ_ONCE(vmgs_slab_size), GFP_ATOMIC);
	local_irq_restore(flags);
	VMGS_TRUTH("\"slab_double_free_survived\": true");
	return -EINVAL;
}

module_init(vmgs_slab_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vmcore-gdbserver samples: kmalloc-8 double free, percpu statistics");
