#include "monitor.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../memmodel/sysinfo.h"

static const char help_text[] =
	"vmcore-gdbserver monitor commands:\n"
	"  help                   this text\n"
	"  info version           server version (QEMU-style answer for the kernel's lx-* scripts)\n"
	"  sys                    facts about the dumped machine (what `vmcore-gdbserver info` prints)\n"
	"  vtop ADDR              page-table walk of ADDR, level by level (selected thread's\n"
	"                         page tables for user addresses, kernel page tables otherwise)\n"
	"  zero-excluded on|off   read pages the dump left out as zeros instead of failing\n"
	"  last-error             why the last failed request of this connection failed\n"
	"  kaslr                  KASLR offset and memory layout, one `name value` per line\n"
	"  halt                   accepted: the target is always halted\n";

static const char *skip_space(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

/* Does cmd start with word, followed by a space or the end? Returns what follows, or NULL. */
static const char *word(const char *cmd, const char *w)
{
	size_t n = strlen(w);
	if (strncmp(cmd, w, n) != 0 || (cmd[n] && !isspace((unsigned char)cmd[n])))
		return NULL;
	return skip_space(cmd + n);
}

bool monitor_sys(struct kernel *k, struct rsp_buf *out)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f) {
		rsp_buf_adds(out, "out of memory\n");
		return false;
	}
	struct vm_error *err = kernel_sysinfo_write(k, f, false);
	fclose(f);
	rsp_buf_add(out, text, len);
	free(text);
	if (err) {
		/* "Not mapped" is the answer to the question, not a failure of the command. */
		bool answered = err->code == VM_ERR_NOT_MAPPED;
		rsp_buf_printf(out, "%s\n", err->message);
		vm_error_destroy(err);
		return answered;
	}
	return true;
}

static bool cmd_kaslr(struct kernel *k, struct rsp_buf *out)
{
	const struct kernel_info *i = kernel_info(k);
	rsp_buf_printf(out, "kaslr_offset 0x%llx\n", (unsigned long long)i->kaslr_offset);
	rsp_buf_printf(out, "phys_base 0x%llx\n", (unsigned long long)i->phys_base);
	rsp_buf_printf(out, "page_offset 0x%llx\n", (unsigned long long)i->page_offset);
	rsp_buf_printf(out, "vmalloc_start 0x%llx\n", (unsigned long long)i->vmalloc_start);
	rsp_buf_printf(out, "vmemmap_base 0x%llx\n", (unsigned long long)i->vmemmap_base);
	rsp_buf_printf(out, "la57 %d\n", i->la57);
	return true;
}

static bool cmd_vtop(struct target *t, struct session *s, const char *arg, struct rsp_buf *out)
{
	char *end;
	errno = 0;
	unsigned long long va = strtoull(arg, &end, 0);
	if (end == arg || *skip_space(end) || errno) {
		rsp_buf_printf(out, "vtop: '%s' is not an address (use 0x... or decimal)\n", arg);
		return false;
	}
	uint64_t pgd = 0;
	const char *space = "kernel page tables";
	if (!(va >> 63)) {
		struct stub_thread *th = session_thread(t, s);
		if (th && th->pgd_pa) {
			pgd = th->pgd_pa;
			space = "page tables of the selected thread's task";
		}
	}
	struct kernel_walk w;
	memset(&w, 0, sizeof(w));
	struct vm_error *err = kernel_vtop(t->kernel, pgd, va, &w);
	rsp_buf_printf(out, "VA 0x%016llx through the %s\n", va, space);
	for (int i = 0; i < w.nlevels && i < 5; i++)
		rsp_buf_printf(out, "  %-4s table 0x%012llx [%3llu] = 0x%016llx\n",
			       w.level[i].name ? w.level[i].name : "?",
			       (unsigned long long)w.level[i].table_pa,
			       (unsigned long long)w.level[i].index,
			       (unsigned long long)w.level[i].entry);
	if (err) {
		/* "Not mapped" is the answer to the question, not a failure of the command. */
		bool answered = err->code == VM_ERR_NOT_MAPPED;
		rsp_buf_printf(out, "%s\n", err->message);
		vm_error_destroy(err);
		return answered;
	}
	if (w.mapped) {
		rsp_buf_printf(out, "  -> PA 0x%012llx (%llu KiB page%s%s)\n", (unsigned long long)w.pa,
			       (unsigned long long)(w.page_size >> 10), w.how ? ", " : "", w.how ? w.how : "");
		enum vm_errcode state = dump_page_state(kernel_dump(t->kernel), w.pa);
		rsp_buf_printf(out, "  page in dump: %s\n", state ? vm_errcode_name(state) : "present");
	} else {
		rsp_buf_adds(out, "  not mapped\n");
	}
	return true;
}

bool monitor_run(struct target *t, struct session *s, const char *cmd, struct rsp_buf *out)
{
	const char *arg;
	cmd = skip_space(cmd);
	if (!*cmd || word(cmd, "help")) {
		rsp_buf_adds(out, help_text);
		return true;
	}
	if ((arg = word(cmd, "info")) && word(arg, "version")) {
		rsp_buf_adds(out, "vmcore-gdbserver " STUB_VERSION " (gdbstub for Linux crash dumps, QEMU-style)\n");
		return true;
	}
	if (word(cmd, "halt")) {
		rsp_buf_adds(out, "the target is a crash dump: it is always halted\n");
		return true;
	}
	if ((arg = word(cmd, "last-error"))) {
		rsp_buf_printf(out, "%s\n", s->last_error[0] ? s->last_error : "no error so far");
		return true;
	}
	if ((arg = word(cmd, "zero-excluded"))) {
		if (word(arg, "on") || word(arg, "off")) {
			s->zero_excluded = word(arg, "on") != NULL;
		} else if (*arg) {
			rsp_buf_adds(out, "zero-excluded takes on or off\n");
			return false;
		}
		rsp_buf_printf(out, "zero-excluded is %s\n", s->zero_excluded ? "on" : "off");
		return true;
	}
	if (!t->kernel) {
		rsp_buf_adds(out, "no dump is loaded\n");
		return false;
	}
	if (word(cmd, "sys")) {
		return monitor_sys(t->kernel, out);
	}
	if (word(cmd, "kaslr"))
		return cmd_kaslr(t->kernel, out);
	if ((arg = word(cmd, "vtop")))
		return cmd_vtop(t, s, arg, out);
	rsp_buf_printf(out, "unknown monitor command '%s'; try 'monitor help'\n", cmd);
	return false;
}
