#include "notes.h"
#include "bytes.h"
#include "growarray.h"

#include <stdlib.h>
#include <string.h>

/* A note name matches with or without its terminating NUL counted in n_namesz. */
static bool name_is(const uint8_t *name, uint32_t namesz, const char *want)
{
	size_t wl = strlen(want);
	if (namesz == wl + 1)
		return memcmp(name, want, wl) == 0 && name[wl] == '\0';
	return namesz == wl && memcmp(name, want, wl) == 0;
}

static struct dump_cpu_note *cpu_slot(struct note_set *set, size_t idx, size_t *cap)
{
	if (grow_array(&set->cpus, cap, idx + 1, sizeof(*set->cpus)))
		return NULL;
	while (set->ncpus <= idx) {
		struct dump_cpu_note *c = &set->cpus[set->ncpus];
		memset(c, 0, sizeof(*c));
		c->index = (int)set->ncpus;
		set->ncpus++;
	}
	return &set->cpus[idx];
}

static void parse_qemu(const uint8_t *d, uint32_t size, struct dump_qemu_cpu *q)
{
	for (int i = 0; i < 16; i++)
		q->gpr[i] = load_u64(d + 8 + 8 * i);
	q->rip = load_u64(d + 136);
	q->rflags = load_u64(d + 144);
	for (int i = 0; i < 10; i++) {
		const uint8_t *s = d + 152 + 24 * i;
		q->seg[i].selector = load_u32(s);
		q->seg[i].limit = load_u32(s + 4);
		q->seg[i].flags = load_u32(s + 8);
		q->seg[i].base = load_u64(s + 16);
	}
	for (int i = 0; i < 5; i++)
		q->cr[i] = load_u64(d + 392 + 8 * i);
	q->has_kernel_gs_base = size >= 440;
	q->kernel_gs_base = q->has_kernel_gs_base ? load_u64(d + 432) : 0;
}

struct vm_error *notes_parse(const uint8_t *buf, size_t len, const char *where, uint64_t base,
			     struct note_set *out)
{
	memset(out, 0, sizeof(*out));
	size_t cap = 0, nprstatus = 0, nqemu = 0, pos = 0;
	struct vm_error *err = NULL;
	while (len - pos >= 12) {
		uint32_t namesz = load_u32(buf + pos), descsz = load_u32(buf + pos + 4);
		uint32_t type = load_u32(buf + pos + 8);
		if (namesz == 0 && descsz == 0 && type == 0)
			break;
		size_t name_off = pos + 12;
		size_t name_pad = ((size_t)namesz + 3) & ~(size_t)3;
		if (name_pad > len - name_off) {
			err = vm_error_create(VM_ERR_FORMAT, base + pos,
					      "%s: note at offset %#llx: name size %u runs past the note area",
					      where, (unsigned long long)(base + pos), namesz);
			break;
		}
		size_t desc_off = name_off + name_pad;
		size_t desc_pad = ((size_t)descsz + 3) & ~(size_t)3;
		if (desc_pad > len - desc_off) {
			err = vm_error_create(VM_ERR_FORMAT, base + pos,
					      "%s: note at offset %#llx: descriptor size %u runs past the note area",
					      where, (unsigned long long)(base + pos), descsz);
			break;
		}
		const uint8_t *name = buf + name_off, *desc = buf + desc_off;
		if (type == NOTE_NT_PRSTATUS && name_is(name, namesz, "CORE")) {
			if (descsz < NOTE_PRSTATUS_REG_OFFSET + 27 * 8) {
				err = vm_error_create(VM_ERR_FORMAT, base + pos,
						      "%s: NT_PRSTATUS note at offset %#llx is %u bytes, too short for pr_reg",
						      where, (unsigned long long)(base + pos), descsz);
				break;
			}
			struct dump_cpu_note *c = cpu_slot(out, nprstatus++, &cap);
			if (!c) {
				err = &vm_error_nomem;
				break;
			}
			c->has_prstatus = true;
			c->pr_pid = load_u32(desc + NOTE_PRSTATUS_PID_OFFSET);
			for (int i = 0; i < 27; i++)
				c->pr_reg[i] = load_u64(desc + NOTE_PRSTATUS_REG_OFFSET + 8 * i);
		} else if (name_is(name, namesz, "QEMU")) {
			uint32_t size = descsz >= 8 ? load_u32(desc + 4) : 0;
			if (descsz < NOTE_QEMU_CPUSTATE_MIN || size < NOTE_QEMU_CPUSTATE_MIN || size > descsz) {
				err = vm_error_create(VM_ERR_FORMAT, base + pos,
						      "%s: QEMU CPU note at offset %#llx: state size %u in a %u-byte note (want >= %u)",
						      where, (unsigned long long)(base + pos), size, descsz,
						      NOTE_QEMU_CPUSTATE_MIN);
				break;
			}
			struct dump_cpu_note *c = cpu_slot(out, nqemu++, &cap);
			if (!c) {
				err = &vm_error_nomem;
				break;
			}
			c->has_qemu = true;
			parse_qemu(desc, size, &c->qemu);
		} else if (name_is(name, namesz, "VMCOREINFO") && !out->vmcoreinfo) {
			out->vmcoreinfo = malloc((size_t)descsz + 1);
			if (!out->vmcoreinfo) {
				err = &vm_error_nomem;
				break;
			}
			memcpy(out->vmcoreinfo, desc, descsz);
			out->vmcoreinfo[descsz] = '\0';
			out->vmcoreinfo_len = strlen(out->vmcoreinfo);
			out->vmcoreinfo_desc_off = desc_off;
		}
		pos = desc_off + desc_pad;
	}
	if (err)
		notes_free(out);
	return err;
}

void notes_free(struct note_set *set)
{
	free(set->cpus);
	free(set->vmcoreinfo);
	memset(set, 0, sizeof(*set));
}
