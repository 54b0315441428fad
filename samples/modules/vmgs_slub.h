/* SPDX-License-Identifier: GPL-2.0 */
/* struct kmem_cache and struct kmem_cache_cpu (SLUB) for the scenario modules. */
#ifndef VMGS_SLUB_H
#define VMGS_SLUB_H

#include <linux/slab.h>

/*
 * slub_def.h carries inline helpers that use struct slab and slab_address()
 * from the private mm/slab.h, which linux-headers lacks. This module never
 * calls those helpers (it compares slab pointers only), so stand-ins let
 * the header compile.
 */
struct slab {
	unsigned int objects;
};

static inline void *slab_address(const struct slab *slab)
{
	return NULL;
}

#include <linux/slub_def.h>

#endif
