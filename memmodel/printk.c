/*
 * The printk ring buffer (5.10+ lockless prb), laid out by VMCOREINFO's OFFSET()/SIZE() keys (or DWARF):
 * the last "Kernel panic - not syncing: " record gives the panic string, a "kernel BUG at" or "Oops:"
 * record the headline crash shows, the newest timestamp the uptime at the crash when jiffies gave none.
 */
#include "kernel_priv.h"
#include "bytes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmcoreinfo.h"

#define PANIC_PREFIX "Kernel panic - not syncing: "
#define DESC_STATE_SHIFT 62
#define DESC_COMMITTED 1
#define DESC_FINALIZED 2
#define MAX_COUNT_BITS 24
#define MAX_SIZE_BITS 30

struct prb_layout {
	uint64_t desc_ring, text_ring, count_bits, descs, infos, size_bits, data;
	uint64_t desc_size, state_var, text_lpos, lpos_begin, lpos_next;
	uint64_t info_size, seq, ts_nsec, text_len;
};

/* OFFSET(type.member) from VMCOREINFO, or from DWARF when the dump has no VMCOREINFO. */
static struct vm_error *offset_of(struct kernel *k, const char *type, const char *member, uint64_t *ret)
{
	if (k->vmci) {
		char key[96];
		snprintf(key, sizeof(key), "%s.%s", type, member);
		return vmcoreinfo_offset(k->vmci, key, ret);
	}
	return vmlinux_member(k->vml, type, member, ret, NULL);
}

static struct vm_error *size_of(struct kernel *k, const char *type, uint64_t *ret)
{
	return k->vmci ? vmcoreinfo_size(k->vmci, type, ret) : vmlinux_type_size(k->vml, type, ret);
}

static struct vm_error *prb_layout_read(struct kernel *k, struct prb_layout *p)
{
	struct vm_error *err;
	if ((err = offset_of(k, "printk_ringbuffer", "desc_ring", &p->desc_ring)) ||
	    (err = offset_of(k, "printk_ringbuffer", "text_data_ring", &p->text_ring)) ||
	    (err = offset_of(k, "prb_desc_ring", "count_bits", &p->count_bits)) ||
	    (err = offset_of(k, "prb_desc_ring", "descs", &p->descs)) ||
	    (err = offset_of(k, "prb_desc_ring", "infos", &p->infos)) ||
	    (err = offset_of(k, "prb_data_ring", "size_bits", &p->size_bits)) ||
	    (err = offset_of(k, "prb_data_ring", "data", &p->data)) ||
	    (err = size_of(k, "prb_desc", &p->desc_size)) ||
	    (err = offset_of(k, "prb_desc", "state_var", &p->state_var)) ||
	    (err = offset_of(k, "prb_desc", "text_blk_lpos", &p->text_lpos)) ||
	    (err = offset_of(k, "prb_data_blk_lpos", "begin", &p->lpos_begin)) ||
	    (err = offset_of(k, "prb_data_blk_lpos", "next", &p->lpos_next)) ||
	    (err = size_of(k, "printk_info", &p->info_size)) ||
	    (err = offset_of(k, "printk_info", "seq", &p->seq)) ||
	    (err = offset_of(k, "printk_info", "ts_nsec", &p->ts_nsec)) ||
	    (err = offset_of(k, "printk_info", "text_len", &p->text_len)))
		return err;
	if (p->desc_size < p->text_lpos + 16 || p->info_size < p->text_len + 2 || p->desc_size > 4096 ||
	    p->info_size > 4096)
		return vm_error_create(VM_ERR_FORMAT, 0, "VMCOREINFO printk layout is inconsistent");
	return NULL;
}

/* A log record's text without its trailing newline, NUL-terminated and truncated to fit. */
static void copy_line(char *dst, size_t size, const char *src, size_t len)
{
	while (len && (src[len - 1] == '\n' || src[len - 1] == 0))
		len--;
	if (len >= size)
		len = size - 1;
	memcpy(dst, src, len);
	dst[len] = 0;
}

static struct vm_error *scan(struct kernel *k, const struct prb_layout *p)
{
	uint64_t prb, prb_ptr, descs, infos, data, size_bits = 0;
	uint32_t count_bits = 0;
	struct vm_error *err;
	if ((err = kernel_symbol_runtime(k, "prb", &prb_ptr)) || (err = kernel_read_u64(k, prb_ptr, &prb)) ||
	    (err = kernel_read_u32(k, prb + p->desc_ring + p->count_bits, &count_bits)) ||
	    (err = kernel_read_u64(k, prb + p->desc_ring + p->descs, &descs)) ||
	    (err = kernel_read_u64(k, prb + p->desc_ring + p->infos, &infos)) ||
	    (err = kernel_read_kva(k, prb + p->text_ring + p->size_bits, &size_bits, 4)) ||
	    (err = kernel_read_u64(k, prb + p->text_ring + p->data, &data)))
		return err;
	if (count_bits > MAX_COUNT_BITS || size_bits > MAX_SIZE_BITS)
		return vm_error_create(VM_ERR_FORMAT, prb, "printk ring buffer at 0x%llx: sizes out of range",
				       (unsigned long long)prb);
	size_t count = (size_t)1 << count_bits, data_size = (size_t)1 << size_bits;
	uint8_t *dbuf = malloc(count * p->desc_size), *ibuf = malloc(count * p->info_size), *text = malloc(data_size);
	if (!dbuf || !ibuf || !text) {
		err = &vm_error_nomem;
		goto out;
	}
	/* Unused parts of the rings are zero pages, which ELF dumps with a dump level leave out. */
	const struct kernel_read_opts zeros = { .as = KAS_KERNEL, .zero_excluded = true };
	if ((err = kernel_read(k, &zeros, descs, dbuf, count * p->desc_size, NULL)) ||
	    (err = kernel_read(k, &zeros, infos, ibuf, count * p->info_size, NULL)) ||
	    (err = kernel_read(k, &zeros, data, text, data_size, NULL)))
		goto out;
	/* The newest record of each kind: the panic line, and the headlines crash's `sys` prefers to it. */
	static const char *const kinds[] = { PANIC_PREFIX, "kernel BUG at ", "Oops: " };
	struct { bool found; uint64_t seq; const char *text; size_t len; } best[3] = { 0 };
	uint64_t last_ts = 0;
	for (size_t i = 0; i < count; i++) {
		const uint8_t *d = dbuf + i * p->desc_size, *info = ibuf + i * p->info_size;
		uint64_t state = load_u64(d + p->state_var) >> DESC_STATE_SHIFT;
		if (state != DESC_COMMITTED && state != DESC_FINALIZED)
			continue;
		uint64_t ts = load_u64(info + p->ts_nsec), seq = load_u64(info + p->seq);
		uint16_t len;
		memcpy(&len, info + p->text_len, sizeof(len));
		if (ts > last_ts)
			last_ts = ts;
		uint64_t begin = load_u64(d + p->text_lpos + p->lpos_begin), next = load_u64(d + p->text_lpos + p->lpos_next);
		if (begin & 1)
			continue; /* data-less record */
		/* A block that wraps is stored whole at the start of the ring. */
		uint64_t off = (begin >> size_bits) == (next >> size_bits) ? (begin & (data_size - 1)) : 0;
		if (off + 8 + len > data_size)
			continue;
		const char *t = (const char *)text + off + 8;
		for (int kind = 0; kind < 3; kind++) {
			size_t plen = strlen(kinds[kind]);
			if (len > plen && memcmp(t, kinds[kind], plen) == 0 && (!best[kind].found || seq > best[kind].seq)) {
				best[kind].found = true;
				best[kind].seq = seq;
				best[kind].text = t;
				best[kind].len = len;
			}
		}
	}
	if (best[0].found) {
		size_t plen = strlen(PANIC_PREFIX);
		copy_line(k->info.panic_string, sizeof(k->info.panic_string), best[0].text + plen, best[0].len - plen);
	}
	/* crash's PANIC line: a BUG() site, else the Oops headline, else the panic line itself. */
	for (int kind = 1; kind <= 3; kind++) {
		int which = kind % 3;
		if (!best[which].found)
			continue;
		copy_line(k->info.panic_message, sizeof(k->info.panic_message), best[which].text, best[which].len);
		k->info.panic_from_oops = which == 2;
		break;
	}
	if (!k->info.uptime_ns)
		k->info.uptime_ns = last_ts;
out:
	free(dbuf);
	free(ibuf);
	free(text);
	return err;
}

void kernel_printk_scan(struct kernel *k)
{
	struct prb_layout p;
	if (!k->vmci && !k->vml)
		return;
	struct vm_error *err = prb_layout_read(k, &p);
	if (!err)
		err = scan(k, &p);
	vm_error_destroy(err);
}
