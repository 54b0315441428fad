// SPDX-License-Identifier: GPL-2.0
/*
 * null-page: a release path frees a page it never got, __free_pages(NULL, 0).
 * On 6.1 the first access is PageHead(page) reading page->flags, so the oops
 * is a NULL dereference inside __free_pages with CR2 0 (older kernels read
 * _refcount first and faulted at its offset). With oops=panic it panics.
 *
 * Truth: the faulting RIP, its symbol+offset and CR2 (from the die notifier
 * of vmgs_truth), plus here the caller: the return address into
 * vmgs_nullpage_release found on the stack, and offsetof(struct page, _refcount).
 */
#include <linux/gfp.h>
#include <linux/kdebug.h>
#include <linux/kernel.h>
#include <linux/mm_types.h>
#include <linux/module.h>
#include <linux/ptrace.h>
#include <linux/stddef.h>

#include "vmgs_truth.h"

/* Never allocated: the bug being recreated. */
static struct page *vmgs_nullpage_buffer;

static noinline void vmgs_nullpage_release(struct page *page)
{
	__free_pages(page, 0);
	/* Work after the call keeps it a call (not a tail jump), so this frame stays. */
	VMGS_TRUTH("\"null_page_survived\": true");
}

/* The first word on the faulting stack that returns into vmgs_nullpage_release. */
static int vmgs_nullpage_die(struct notifier_block *nb, unsigned long event,
			     void *data)
{
	struct die_args *args = data;
	unsigned long *sp = (unsigned long *)args->regs->sp;
	unsigned long start = (unsigned long)vmgs_nullpage_release;
	int i;

	if (event != DIE_OOPS)
		return NOTIFY_DONE;
	for (i = 0; i < 32; i++) {
		if (sp[i] > start && sp[i] < start + 256) {
			VMGS_TRUTH("\"caller\": \"%pS\", \"caller_return_address\": \"0x%lx\", \"caller_return_slot\": \"0x%lx\"",
				   (void *)sp[i], sp[i], (unsigned long)&sp[i]);
			break;
		}
	}
	return NOTIFY_DONE;
}

static struct notifier_block vmgs_nullpage_nb = {
	.notifier_call = vmgs_nullpage_die,
};

static int __init vmgs_nullpage_init(void)
{
	int err = register_die_notifier(&vmgs_nullpage_nb);

	if (err)
		return err;
	VMGS_TRUTH("\"page_refcount_offset\": %zu, \"page_flags_offset\": %zu, \"freed_page\": \"0x%lx\", \"caller_function\": \"vmgs_nullpage_release\"",
		   offsetof(struct page, _refcount), offsetof(struct page, flags),
		   (unsigned long)READ_ONCE(vmgs_nullpage_buffer));
	vmgs_nullpage_release(READ_ONCE(vmgs_nullpage_buffer));
	unregister_die_notifier(&vmgs_nullpage_nb);
	return -EINVAL;
}

module_init(vmgs_nullpage_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vmcore-gdbserver samples: __free_pages(NULL, 0)");
