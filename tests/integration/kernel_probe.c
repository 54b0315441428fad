/*
 * Test entry point into the kernel layer, for the integration tests and bench/:
 *   kernel_probe DUMP[,SPLIT...] VMLINUX info [--json]   the sysinfo report
 *   kernel_probe DUMP VMLINUX vtop                       one VA per stdin line -> "va pa" or "va error: msg"
 *   kernel_probe DUMP VMLINUX tasks                      one line per task: pid tgid state cpu running_on
 *                                                        kthread addr stack pgd_pa comm | rip rsp rbp gs_base cr3
 *   kernel_probe DUMP VMLINUX cpus                       one line per CPU
 *   kernel_probe DUMP VMLINUX read ADDR LEN              hex of LEN bytes of kernel virtual memory
 *   kernel_probe DUMP VMLINUX uread PID ADDR LEN         the same through the page tables of task PID
 *   kernel_probe DUMP VMLINUX sym NAME...                runtime addresses of symbols
 *   kernel_probe DUMP VMLINUX timing                     open / task enumeration / translation figures
 * VMLINUX may be "-" (none).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dump.h"
#include "kernel.h"
#include "sysinfo.h"

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int fail(struct vm_error *err)
{
	fprintf(stderr, "kernel_probe: %s\n", err->message);
	vm_error_destroy(err);
	return 1;
}

static int cmd_vtop(struct kernel *k)
{
	char line[128];
	while (fgets(line, sizeof(line), stdin)) {
		uint64_t va = strtoull(line, NULL, 16);
		struct kernel_walk w;
		struct vm_error *err = kernel_vtop(k, 0, va, &w);
		if (err) {
			printf("%" PRIx64 " error: %s\n", va, err->message);
			vm_error_destroy(err);
		} else {
			printf("%" PRIx64 " %" PRIx64 "\n", va, w.pa);
		}
	}
	return 0;
}

static void print_regs(const struct x86_regs *r)
{
	static const struct { enum x86_reg reg; const char *name; } shown[] = {
		{ REG_RIP, "rip" }, { REG_RSP, "rsp" }, { REG_RBP, "rbp" }, { REG_GS_BASE, "gs_base" }, { REG_CR3, "cr3" },
	};
	for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
		if (regs_has(r, shown[i].reg))
			printf(" %s=%" PRIx64, shown[i].name, r->v[shown[i].reg]);
		else
			printf(" %s=x", shown[i].name);
	}
}

static int cmd_tasks(struct kernel *k)
{
	const struct kernel_task *t;
	size_t n;
	struct vm_error *err = kernel_tasks(k, &t, &n);
	if (err)
		return fail(err);
	for (size_t i = 0; i < n; i++) {
		struct x86_regs r;
		printf("%d %d %c %d %d %d %" PRIx64 " %" PRIx64 " %" PRIx64 " %s |", t[i].pid, t[i].tgid, t[i].state,
		       t[i].cpu, t[i].running_on, t[i].kernel_thread, t[i].addr, t[i].stack, t[i].pgd_pa, t[i].comm);
		err = kernel_task_regs(k, &t[i], &r);
		if (err) {
			printf(" regs error: %s", err->message);
			vm_error_destroy(err);
		} else {
			print_regs(&r);
		}
		printf("\n");
	}
	return 0;
}

static int cmd_cpus(struct kernel *k)
{
	for (int c = 0; c < kernel_info(k)->nr_cpus; c++) {
		struct kernel_cpu cpu;
		struct vm_error *err = kernel_cpu(k, c, &cpu);
		if (err)
			return fail(err);
		printf("%d online=%d regs=%d panicking=%d per_cpu=%" PRIx64 " current=%" PRIx64 " |", c, cpu.online,
		       cpu.has_regs, cpu.panicking, cpu.per_cpu_offset, cpu.current_task);
		print_regs(&cpu.regs);
		printf("\n");
	}
	return 0;
}

static int cmd_read(struct kernel *k, const char *pid_s, const char *addr_s, const char *len_s)
{
	uint64_t addr = strtoull(addr_s, NULL, 16);
	size_t len = strtoull(len_s, NULL, 0), done;
	struct kernel_read_opts o = { .as = KAS_KERNEL };
	if (pid_s) {
		const struct kernel_task *t;
		size_t n;
		struct vm_error *err = kernel_tasks(k, &t, &n);
		if (err)
			return fail(err);
		o.as = KAS_USER;
		for (size_t i = 0; i < n; i++)
			if (t[i].pid == atoi(pid_s))
				o.pgd_pa = t[i].pgd_pa;
	}
	unsigned char *buf = malloc(len ? len : 1);
	struct vm_error *err = kernel_read(k, &o, addr, buf, len, &done);
	for (size_t i = 0; i < done; i++)
		printf("%02x", buf[i]);
	printf("\n");
	free(buf);
	return err ? fail(err) : 0;
}

/* Translation throughput over the kernel text and the task stacks, as gdb would touch them. */
static int cmd_timing(struct kernel *k, double dump_open_ms, double open_ms)
{
	double t0 = now_ms();
	const struct kernel_task *t;
	size_t n;
	struct vm_error *err = kernel_tasks(k, &t, &n);
	if (err)
		return fail(err);
	double t1 = now_ms();
	size_t regs_ok = 0;
	for (size_t i = 0; i < n; i++) {
		struct x86_regs r;
		err = kernel_task_regs(k, &t[i], &r);
		if (!err)
			regs_ok++;
		vm_error_destroy(err);
	}
	double t2 = now_ms();
	/* 64-byte reads spread over every task's stack: mostly TLB hits, like gdb unwinding. */
	struct kernel_read_opts o = { .as = KAS_KERNEL };
	size_t reads = 0, bytes = 0;
	unsigned char buf[64];
	for (int rep = 0; rep < 4; rep++) {
		for (size_t i = 0; i < n; i++) {
			for (uint64_t off = 0; off < 16384; off += 512) {
				size_t done;
				err = kernel_read(k, &o, t[i].stack + off, buf, sizeof(buf), &done);
				vm_error_destroy(err);
				reads++;
				bytes += done;
			}
		}
	}
	double t3 = now_ms();
	/* Full walks: distinct pages, every one a TLB miss. */
	uint64_t text = 0;
	err = kernel_symbol(k, "_stext", &text);
	if (err)
		return fail(err);
	size_t walks = 0;
	for (uint64_t va = text; va < text + (32ull << 20); va += 4096) {
		struct kernel_walk w;
		err = kernel_vtop(k, 0, va, &w);
		vm_error_destroy(err);
		walks++;
	}
	double t4 = now_ms();
	printf("dump_open_ms %.2f kernel_open_ms %.2f\n", dump_open_ms, open_ms);
	printf("tasks %zu enumerate_ms %.2f\n", n, t1 - t0);
	printf("task_regs %zu ms %.2f\n", regs_ok, t2 - t1);
	printf("stack_reads %zu bytes %zu ms %.2f per_read_us %.3f\n", reads, bytes, t3 - t2, (t3 - t2) * 1e3 / (double)reads);
	printf("walks %zu ms %.2f per_walk_us %.3f\n", walks, t4 - t3, (t4 - t3) * 1e3 / (double)walks);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: kernel_probe DUMP[,MORE] VMLINUX|- info|vtop|tasks|cpus|read|timing ...\n");
		return 2;
	}
	char *files = strdup(argv[1]);
	const char *paths[16];
	size_t npaths = 0;
	for (char *save = NULL, *p = strtok_r(files, ",", &save); p && npaths < 16; p = strtok_r(NULL, ",", &save))
		paths[npaths++] = p;
	double t0 = now_ms();
	struct dump *dump;
	struct kernel *k;
	struct vm_error *err = dump_open(paths, npaths, NULL, &dump);
	if (err)
		return fail(err);
	double t1 = now_ms();
	err = kernel_open(dump, strcmp(argv[2], "-") ? argv[2] : NULL, &k);
	if (err)
		return fail(err);
	double open_ms = now_ms() - t1, dump_open_ms = t1 - t0;
	int rc = 0;
	const char *cmd = argv[3];
	if (strcmp(cmd, "info") == 0) {
		err = kernel_sysinfo_write(k, stdout, argc > 4 && strcmp(argv[4], "--json") == 0);
		rc = err ? fail(err) : 0;
	} else if (strcmp(cmd, "vtop") == 0) {
		rc = cmd_vtop(k);
	} else if (strcmp(cmd, "tasks") == 0) {
		rc = cmd_tasks(k);
	} else if (strcmp(cmd, "cpus") == 0) {
		rc = cmd_cpus(k);
	} else if (strcmp(cmd, "read") == 0 && argc == 6) {
		rc = cmd_read(k, NULL, argv[4], argv[5]);
	} else if (strcmp(cmd, "uread") == 0 && argc == 7) {
		rc = cmd_read(k, argv[4], argv[5], argv[6]);
	} else if (strcmp(cmd, "sym") == 0) {
		for (int i = 4; i < argc && !rc; i++) {
			uint64_t addr;
			err = kernel_symbol(k, argv[i], &addr);
			if (err)
				rc = fail(err);
			else
				printf("%s %" PRIx64 "\n", argv[i], addr);
		}
	} else if (strcmp(cmd, "timing") == 0) {
		rc = cmd_timing(k, dump_open_ms, open_ms);
	} else {
		fprintf(stderr, "kernel_probe: unknown command %s\n", cmd);
		rc = 2;
	}
	kernel_close(k);
	dump_close(dump);
	free(files);
	return rc;
}
