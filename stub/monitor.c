#include "monitor.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../memmodel/slab.h"
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
	"  kmem -s [NAME]         SLUB caches as crash's kmem -s: OBJSIZE ALLOCATED TOTAL SLABS SSIZE\n"
	"  kmem -S NAME|ADDR      check every freelist of one SLUB cache (duplicates, bad pointers,\n"
	"                         loops, counter mismatches), as crash's kmem -S\n"
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

/* Print err's message and destroy it; false (the command failed). */
static bool fail_with(struct vm_error *err, struct rsp_buf *out)
{
	rsp_buf_printf(out, "%s\n", err->message);
	vm_error_destroy(err);
	return false;
}

static const char *size_text(uint64_t bytes, char *buf, size_t len)
{
	if (bytes % (1u << 20) == 0)
		snprintf(buf, len, "%llum", (unsigned long long)(bytes >> 20));
	else
		snprintf(buf, len, "%lluk", (unsigned long long)(bytes >> 10));
	return buf;
}

static bool kmem_list(struct slab_model *m, struct slab_cache *caches, size_t n, const char *name,
		      struct rsp_buf *out)
{
	size_t shown = 0;
	rsp_buf_printf(out, "%-18s %7s %10s %9s %6s %6s  %s\n", "CACHE", "OBJSIZE", "ALLOCATED", "TOTAL", "SLABS",
		       "SSIZE", "NAME");
	for (size_t i = 0; i < n; i++) {
		const struct slab_cache *c = &caches[i];
		struct slab_stats st;
		char size[32];
		if (*name && strcmp(c->name, name) != 0)
			continue;
		struct vm_error *err = slab_cache_stats(m, c, &st);
		if (err)
			return fail_with(err, out);
		rsp_buf_printf(out, "%-18llx %7u %10lld %9lld %6lld %6s  %s\n", (unsigned long long)c->addr,
			       c->object_size, (long long)st.allocated, (long long)st.total, (long long)st.slabs,
			       size_text(c->slab_bytes, size, sizeof(size)), c->name);
		shown++;
	}
	if (*name && !shown) {
		rsp_buf_reset(out);
		rsp_buf_printf(out, "no slab cache named '%s'\n", name);
		return false;
	}
	return true;
}

static bool kmem_check(struct slab_model *m, const struct slab_cache *c, struct rsp_buf *out)
{
	rsp_buf_printf(out, "kmem_cache 0x%llx %s: objsize %u size %u offset %u order %u objects/slab %u random 0x%llx\n",
		       (unsigned long long)c->addr, c->name, c->object_size, c->size, c->offset, c->order, c->oo_objects,
		       (unsigned long long)c->random);
	struct slab_check chk;
	struct vm_error *err = slab_check_cache(m, c, &chk);
	if (err)
		return fail_with(err, out);
	for (size_t i = 0; i < chk.nslabs; i++) {
		const struct slab_checked *s = &chk.slabs[i];
		rsp_buf_printf(out, "  %-16s slab 0x%llx memory 0x%llx objects %3d inuse %3d: ", s->where,
			       (unsigned long long)s->slab, (unsigned long long)s->base, s->objects, s->inuse);
		for (int w = 0; w < s->nwalks; w++)
			rsp_buf_printf(out, "%s%s %zu", w ? ", " : "", s->walk_name[w], s->walk_count[w]);
		rsp_buf_adds(out, "\n");
	}
	rsp_buf_printf(out, "%zu slabs checked, %zu free objects on freelists\n", chk.nslabs, chk.free_objects);
	if (chk.nproblems) {
		rsp_buf_printf(out, "%zu problem(s):\n", chk.nproblems);
		for (size_t i = 0; i < chk.nproblems; i++)
			rsp_buf_printf(out, "  %s\n", chk.problems[i]);
	} else {
		rsp_buf_adds(out, "no freelist problems found\n");
	}
	if (chk.nduplicates) {
		rsp_buf_adds(out, "duplicate freelist objects:");
		for (size_t i = 0; i < chk.nduplicates; i++)
			rsp_buf_printf(out, " 0x%llx", (unsigned long long)chk.duplicates[i]);
		rsp_buf_adds(out, "\n");
	}
	slab_check_free(&chk);
	return true;
}

/* kmem -s [NAME] | kmem -S NAME|ADDR: the text gdbscripts' vkmem prints for the same request. */
static bool cmd_kmem(struct kernel *k, const char *arg, struct rsp_buf *out)
{
	const char *rest;
	bool list = (rest = word(arg, "-s")) != NULL;
	if (!list && !(rest = word(arg, "-S"))) {
		rsp_buf_adds(out, "usage: kmem -s [NAME] | kmem -S NAME|ADDR\n");
		return false;
	}
	char spec[256];
	size_t len = strlen(rest);
	while (len && isspace((unsigned char)rest[len - 1]))
		len--;
	if (len >= sizeof(spec) || strcspn(rest, " \t") < len) {
		rsp_buf_adds(out, "kmem: give one cache name or address\n");
		return false;
	}
	memcpy(spec, rest, len);
	spec[len] = '\0';
	if (!list && !len) {
		rsp_buf_adds(out, "usage: kmem -S NAME|ADDR\n");
		return false;
	}
	struct slab_model *m;
	struct slab_cache *caches;
	size_t n, index;
	struct vm_error *err = slab_model_open(k, &m);
	if (err)
		return fail_with(err, out);
	if ((err = slab_caches(m, &caches, &n))) {
		slab_model_close(m);
		return fail_with(err, out);
	}
	bool ok;
	if (list)
		ok = kmem_list(m, caches, n, spec, out);
	else if ((err = slab_find_cache(caches, n, spec, &index)))
		ok = fail_with(err, out);
	else
		ok = kmem_check(m, &caches[index], out);
	slab_caches_free(caches, n);
	slab_model_close(m);
	return ok;
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
	if ((arg = word(cmd, "kmem")))
		return cmd_kmem(t->kernel, arg, out);
	rsp_buf_printf(out, "unknown monitor command '%s'; try 'monitor help'\n", cmd);
	return false;
}
