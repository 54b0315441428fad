/*
 * `info` report. JSON keys: release, version, machine, nodename, build_id, vmlinux, dump_format,
 * dump_description, dump_level, cpus, online_cpus, crash_time (epoch s), date, uptime_ns, uptime,
 * memory_bytes, tasks (count or null), tasks_error, panic_string, panic_message, panic_cpu, panic_task {addr, pid,
 * comm}, kaslr_offset, phys_base, page_offset, vmalloc_start, vmemmap_base, sme_mask, root_pgt,
 * paging ("4-level" | "5-level"), layout_source. Addresses are "0x..." strings, null when unknown.
 */
#include "sysinfo.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernel_priv.h"

void kernel_memory_init(struct kernel *k)
{
	uint64_t node_data, present_off;
	struct vm_error *err = NULL;
	if (!k->vml || (err = kernel_symbol_runtime(k, "node_data", &node_data)) ||
	    (err = vmlinux_member(k->vml, "pglist_data", "node_present_pages", &present_off, NULL))) {
		vm_error_destroy(err);
		return;
	}
	/* node_data[MAX_NUMNODES]: a pointer per node, NULL for nodes that do not exist. */
	uint64_t total = 0;
	for (int node = 0; node < 1024; node++) {
		uint64_t pgdat, pages;
		if ((err = kernel_read_u64(k, node_data + 8 * (uint64_t)node, &pgdat)) ||
		    (pgdat && (err = kernel_read_u64(k, pgdat + present_off, &pages)))) {
			vm_error_destroy(err);
			break;
		}
		if (pgdat)
			total += pages;
	}
	k->info.total_ram = total * dump_describe(k->dump)->page_size;
}

static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

/* An address member: a "0x..." string, or null when unknown. */
static void json_addr(FILE *out, const char *key, uint64_t val, bool known)
{
	if (known)
		fprintf(out, ", \"%s\": \"0x%" PRIx64 "\"", key, val);
	else
		fprintf(out, ", \"%s\": null", key);
}

static void format_uptime(uint64_t ns, char *buf, size_t size)
{
	uint64_t s = ns / 1000000000ull;
	uint64_t days = s / 86400;
	if (days)
		snprintf(buf, size, "%" PRIu64 " days, %02" PRIu64 ":%02" PRIu64 ":%02" PRIu64, days, s / 3600 % 24,
			 s / 60 % 60, s % 60);
	else
		snprintf(buf, size, "%02" PRIu64 ":%02" PRIu64 ":%02" PRIu64, s / 3600, s / 60 % 60, s % 60);
}

static void format_memory(uint64_t bytes, char *buf, size_t size)
{
	static const char *units[] = { "B", "KB", "MB", "GB", "TB" };
	double v = (double)bytes;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (v == (double)(uint64_t)v)
		snprintf(buf, size, "%" PRIu64 " %s", (uint64_t)v, units[u]);
	else
		snprintf(buf, size, "%.1f %s", v, units[u]);
}

struct vm_error *kernel_sysinfo_write(struct kernel *k, FILE *out, bool json)
{
	const struct kernel_info *in = &k->info;
	const struct dump_desc *d = dump_describe(k->dump);
	const struct kernel_task *tasks = NULL;
	size_t ntasks = 0;
	char *tasks_error = NULL;
	if (k->vml) {
		struct vm_error *err = kernel_tasks(k, &tasks, &ntasks);
		if (err) {
			tasks_error = strdup(err->message);
			vm_error_destroy(err);
		}
	}
	const struct kernel_task *panic_task = NULL;
	for (size_t i = 0; i < ntasks; i++)
		if (tasks[i].addr == k->panic_task && k->panic_task)
			panic_task = &tasks[i];
	int online = 0;
	for (int c = 0; c < k->nr_cpu_slots; c++)
		online += k->cpus[c].online;

	char date[64] = "", uptime[64] = "", memory[32] = "";
	if (in->crash_time) {
		time_t t = (time_t)in->crash_time;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(date, sizeof(date), "%a %b %e %H:%M:%S UTC %Y", &tm);
	}
	if (in->uptime_ns)
		format_uptime(in->uptime_ns, uptime, sizeof(uptime));
	if (in->total_ram)
		format_memory(in->total_ram, memory, sizeof(memory));
	const char *paging = in->la57 ? "5-level" : "4-level";

	if (json) {
		fprintf(out, "{\"release\": ");
		json_string(out, in->release);
		fprintf(out, ", \"version\": ");
		json_string(out, in->version);
		fprintf(out, ", \"machine\": ");
		json_string(out, in->machine);
		fprintf(out, ", \"nodename\": ");
		json_string(out, in->nodename);
		fprintf(out, ", \"build_id\": ");
		json_string(out, in->build_id);
		fprintf(out, ", \"vmlinux\": ");
		if (k->vml)
			json_string(out, vmlinux_path(k->vml));
		else
			fprintf(out, "null");
		fprintf(out, ", \"dump_format\": ");
		json_string(out, d->format);
		fprintf(out, ", \"dump_description\": ");
		json_string(out, d->description);
		fprintf(out, ", \"dump_level\": ");
		if (d->dump_level >= 0)
			fprintf(out, "%d", d->dump_level);
		else
			fprintf(out, "null");
		fprintf(out, ", \"cpus\": %d, \"online_cpus\": %d", in->nr_cpus, online);
		fprintf(out, ", \"crash_time\": %" PRIu64 ", \"date\": ", in->crash_time);
		json_string(out, date);
		fprintf(out, ", \"uptime_ns\": %" PRIu64 ", \"uptime\": ", in->uptime_ns);
		json_string(out, uptime);
		fprintf(out, ", \"memory_bytes\": %" PRIu64, in->total_ram);
		if (k->vml && !tasks_error)
			fprintf(out, ", \"tasks\": %zu, \"tasks_error\": null", ntasks);
		else {
			fprintf(out, ", \"tasks\": null, \"tasks_error\": ");
			json_string(out, tasks_error ? tasks_error : "no vmlinux");
		}
		fprintf(out, ", \"panic_string\": ");
		json_string(out, in->panic_string);
		fprintf(out, ", \"panic_message\": ");
		json_string(out, in->panic_message);
		fprintf(out, ", \"panic_cpu\": %d, \"panic_task\": ", in->panic_cpu);
		if (panic_task) {
			fprintf(out, "{\"addr\": \"0x%" PRIx64 "\", \"pid\": %d, \"comm\": ", panic_task->addr, panic_task->pid);
			json_string(out, panic_task->comm);
			fprintf(out, "}");
		} else {
			fprintf(out, "null");
		}
		json_addr(out, "kaslr_offset", in->kaslr_offset, true);
		json_addr(out, "phys_base", in->phys_base, true);
		json_addr(out, "page_offset", in->page_offset, k->bases_known);
		json_addr(out, "vmalloc_start", in->vmalloc_start, k->vml != NULL);
		json_addr(out, "vmemmap_base", in->vmemmap_base, k->vml != NULL);
		json_addr(out, "sme_mask", in->sme_mask, true);
		json_addr(out, "root_pgt", in->root_pgt, true);
		fprintf(out, ", \"paging\": \"%s\", \"layout_source\": ", paging);
		json_string(out, k->layout_source);
		fprintf(out, "}\n");
	} else {
		if (k->vml)
			fprintf(out, "      KERNEL: %s\n", vmlinux_path(k->vml));
		fprintf(out, "    DUMPFILE: %s\n", d->description);
		fprintf(out, "        CPUS: %d", in->nr_cpus);
		if (online != in->nr_cpus)
			fprintf(out, " [OFFLINE: %d]", in->nr_cpus - online);
		fprintf(out, "\n        DATE: %s\n", date[0] ? date : "(unknown)");
		fprintf(out, "      UPTIME: %s\n", uptime[0] ? uptime : "(unknown)");
		if (k->vml && !tasks_error)
			fprintf(out, "       TASKS: %zu\n", ntasks);
		else
			fprintf(out, "       TASKS: (%s)\n", tasks_error ? tasks_error : "no vmlinux");
		fprintf(out, "    NODENAME: %s\n", in->nodename);
		fprintf(out, "     RELEASE: %s\n", in->release);
		fprintf(out, "     VERSION: %s\n", in->version);
		fprintf(out, "     MACHINE: %s\n", in->machine);
		fprintf(out, "      MEMORY: %s\n", memory[0] ? memory : "(unknown)");
		if (in->panic_message[0])
			fprintf(out, "       PANIC: \"%s\"%s\n", in->panic_message,
				in->panic_from_oops ? " (check log for details)" : "");
		else
			fprintf(out, "       PANIC: (unknown)\n");
		if (in->panic_cpu >= 0)
			fprintf(out, "   PANIC CPU: %d\n", in->panic_cpu);
		if (panic_task)
			fprintf(out, "  PANIC TASK: %d (%s) at 0x%" PRIx64 "\n", panic_task->pid, panic_task->comm,
				panic_task->addr);
		fprintf(out, "KASLR OFFSET: 0x%" PRIx64 "\n", in->kaslr_offset);
		/* phys_base is negative when the kernel sits below its link-time physical address. */
		if ((int64_t)in->phys_base < 0)
			fprintf(out, "   PHYS_BASE: -0x%" PRIx64 "\n", -in->phys_base);
		else
			fprintf(out, "   PHYS_BASE: 0x%" PRIx64 "\n", in->phys_base);
		if (k->bases_known)
			fprintf(out, " PAGE_OFFSET: 0x%" PRIx64 "\n", in->page_offset);
		if (k->vml) {
			fprintf(out, "VMALLOC_BASE: 0x%" PRIx64 "\n", in->vmalloc_start);
			fprintf(out, "VMEMMAP_BASE: 0x%" PRIx64 "\n", in->vmemmap_base);
		}
		fprintf(out, "      PAGING: %s%s\n", paging, in->sme_mask ? " with SME" : "");
		fprintf(out, "      LAYOUT: from %s\n", k->layout_source);
	}
	free(tasks_error);
	if (ferror(out))
		return vm_error_errno(0, "writing the info report");
	return NULL;
}
