/*
 * CPUs: per-CPU offsets, online/present masks, which register note belongs to which CPU, the task
 * current on each CPU, and the panicking CPU.
 */
#include "kernel_priv.h"

#include <stdlib.h>
#include <string.h>

static struct vm_error *read_cpumask(struct kernel *k, const char *sym, int nbits, uint64_t *bits)
{
	uint64_t addr;
	struct vm_error *err = kernel_symbol_runtime(k, sym, &addr);
	if (err)
		return err;
	return kernel_read_kva(k, addr, bits, (size_t)(nbits + 63) / 64 * 8);
}

static bool bit_set(const uint64_t *bits, int i)
{
	return (bits[i / 64] >> (i % 64)) & 1;
}

/* pid of the task at addr, or -1. */
static int32_t task_pid(struct kernel *k, uint64_t task)
{
	uint32_t pid;
	if (!task || !k->have_task_offsets)
		return -1;
	struct vm_error *err = kernel_read_u32(k, task + k->off.pid, &pid);
	if (err) {
		vm_error_destroy(err);
		return -1;
	}
	return (int32_t)pid;
}

/*
 * Kernel-written notes are compacted (CPUs that saved nothing are dropped): lay them onto the online
 * CPUs in order, or the present ones when that count matches, then let pr_pid move a note to the
 * CPU whose current task has that pid.
 */
static void map_notes(struct kernel *k, const struct dump_cpu_note *notes, size_t nnotes, const uint64_t *online,
		      const uint64_t *present, int *note_of_cpu)
{
	int n = k->nr_cpu_slots, nonline = 0, npresent = 0;
	for (int c = 0; c < n; c++) {
		note_of_cpu[c] = -1;
		nonline += online ? bit_set(online, c) : 1;
		npresent += present ? bit_set(present, c) : 1;
	}
	bool qemu = nnotes && notes[0].has_qemu;
	const uint64_t *order = (!qemu && (size_t)nonline != nnotes && (size_t)npresent == nnotes) ? present : online;
	size_t next = 0;
	for (int c = 0; c < n && next < nnotes; c++)
		if (qemu || !order || bit_set(order, c))
			note_of_cpu[c] = (int)next++;
	if (qemu)
		return; /* QEMU writes one note per vCPU, in CPU order */
	for (int c = 0; c < n; c++) {
		int ni = note_of_cpu[c];
		if (ni < 0 || !notes[ni].pr_pid || task_pid(k, k->cpus[c].current_task) == (int32_t)notes[ni].pr_pid)
			continue;
		for (int other = 0; other < n; other++) {
			if (other != c && task_pid(k, k->cpus[other].current_task) == (int32_t)notes[ni].pr_pid) {
				int tmp = note_of_cpu[other];
				note_of_cpu[other] = ni;
				note_of_cpu[c] = tmp;
				break;
			}
		}
	}
}

static uint64_t current_task_of(struct kernel *k, uint64_t per_cpu_offset)
{
	uint64_t task;
	if (!k->current_task_sym)
		return 0;
	struct vm_error *err = kernel_read_u64(k, per_cpu_offset + k->current_task_sym, &task);
	if (err) {
		vm_error_destroy(err);
		return 0;
	}
	return task;
}

static struct vm_error *find_current_task_sym(struct kernel *k)
{
	uint64_t addr, off;
	/* 6.2+ keeps current_task in struct pcpu_hot; earlier kernels have a per-CPU current_task. */
	struct vm_error *err = kernel_symbol_runtime(k, "pcpu_hot", &addr);
	if (!err) {
		err = vmlinux_member(k->vml, "pcpu_hot", "current_task", &off, NULL);
		if (err)
			return err;
		k->current_task_sym = addr + off;
		return NULL;
	}
	vm_error_destroy(err);
	return kernel_symbol_runtime(k, "current_task", &k->current_task_sym);
}

struct vm_error *kernel_cpus_init(struct kernel *k)
{
	const struct dump_cpu_note *notes;
	size_t nnotes = dump_cpu_notes(k->dump, &notes);
	uint64_t online[KERNEL_MAX_CPUS / 64] = { 0 }, present[KERNEL_MAX_CPUS / 64] = { 0 };
	uint64_t *per_cpu = NULL;
	bool have_masks = false;
	int slots = (int)nnotes;
	struct vm_error *err = NULL;

	if (k->vml) {
		uint64_t nr_ids_addr, pco_addr;
		uint32_t nr_ids;
		if ((err = kernel_symbol_runtime(k, "nr_cpu_ids", &nr_ids_addr)) ||
		    (err = kernel_read_u32(k, nr_ids_addr, &nr_ids)))
			return vm_error_prefix(err, "reading nr_cpu_ids");
		if (nr_ids == 0 || nr_ids > KERNEL_MAX_CPUS)
			return vm_error_create(VM_ERR_FORMAT, nr_ids_addr, "nr_cpu_ids at 0x%llx is %u: corrupt",
					       (unsigned long long)nr_ids_addr, nr_ids);
		if ((err = read_cpumask(k, "__cpu_online_mask", (int)nr_ids, online)) ||
		    (err = read_cpumask(k, "__cpu_present_mask", (int)nr_ids, present)))
			return vm_error_prefix(err, "reading CPU masks");
		have_masks = true;
		per_cpu = calloc(nr_ids, sizeof(*per_cpu));
		if (!per_cpu)
			return &vm_error_nomem;
		if ((err = kernel_symbol_runtime(k, "__per_cpu_offset", &pco_addr)) ||
		    (err = kernel_read_kva(k, pco_addr, per_cpu, nr_ids * sizeof(*per_cpu)))) {
			free(per_cpu);
			return vm_error_prefix(err, "reading __per_cpu_offset");
		}
		err = find_current_task_sym(k);
		if (err) {
			free(per_cpu);
			return err;
		}
		/* Highest present or online CPU, but never fewer slots than register notes. */
		for (int c = 0; c < (int)nr_ids; c++)
			if (bit_set(online, c) || bit_set(present, c))
				slots = slots > c + 1 ? slots : c + 1;
		if (slots > (int)nr_ids)
			slots = (int)nr_ids;
	}
	if (slots == 0)
		slots = 1;
	k->nr_cpu_slots = slots;
	k->info.nr_cpus = slots;
	k->cpus = calloc((size_t)slots, sizeof(*k->cpus));
	int *note_of_cpu = calloc((size_t)slots, sizeof(*note_of_cpu));
	if (!k->cpus || !note_of_cpu) {
		free(per_cpu);
		free(note_of_cpu);
		return &vm_error_nomem;
	}
	for (int c = 0; c < slots; c++) {
		struct kernel_cpu *cpu = &k->cpus[c];
		cpu->cpu = c;
		cpu->online = have_masks ? bit_set(online, c) : true;
		if (per_cpu) {
			cpu->per_cpu_offset = per_cpu[c];
			cpu->current_task = current_task_of(k, per_cpu[c]);
		}
	}
	free(per_cpu);
	map_notes(k, notes, nnotes, have_masks ? online : NULL, have_masks ? present : NULL, note_of_cpu);

	for (int c = 0; c < slots; c++) {
		struct kernel_cpu *cpu = &k->cpus[c];
		int ni = note_of_cpu[c];
		if (ni < 0)
			continue;
		if (notes[ni].has_qemu)
			regs_from_qemu(&notes[ni].qemu, &cpu->regs);
		else if (notes[ni].has_prstatus)
			regs_from_prstatus(notes[ni].pr_reg, &cpu->regs);
		else
			continue;
		cpu->has_regs = true;
		/* The kernel per-CPU base, whatever GS held at the moment of the dump. */
		if (k->vml)
			regs_set(&cpu->regs, REG_GS_BASE, cpu->per_cpu_offset);
		else if (!notes[ni].has_qemu)
			cpu->regs.valid &= ~(1ull << REG_GS_BASE);
	}
	free(note_of_cpu);

	uint64_t panic_addr;
	uint32_t panic_cpu;
	if (k->vml && !(err = kernel_symbol_runtime(k, "panic_cpu", &panic_addr)) &&
	    !(err = kernel_read_u32(k, panic_addr, &panic_cpu)) && (int32_t)panic_cpu >= 0 &&
	    (int32_t)panic_cpu < slots) {
		k->info.panic_cpu = (int)panic_cpu;
		k->cpus[panic_cpu].panicking = true;
		k->panic_task = k->cpus[panic_cpu].current_task;
	}
	vm_error_destroy(err);
	return NULL;
}

struct vm_error *kernel_cpu(struct kernel *k, int cpu, struct kernel_cpu *out)
{
	if (cpu < 0 || cpu >= k->nr_cpu_slots)
		return vm_error_create(VM_ERR_NOT_FOUND, 0, "no CPU %d (the dump has CPUs 0-%d)", cpu, k->nr_cpu_slots - 1);
	*out = k->cpus[cpu];
	return NULL;
}
