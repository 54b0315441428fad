/*
 * Room in a heap array that grows as elements are appended: the one place that doubles a
 * capacity, checks the byte count for overflow and reallocates.
 */
#ifndef MEMMODEL_GROWARRAY_H
#define MEMMODEL_GROWARRAY_H

#include <stddef.h>

#include "error.h"

/*
 * Make *cap at least need, for an array of elements of elem_size (> 0) bytes. items is the
 * address of the caller's array pointer (&list->v, not list->v); the pointer may be NULL with
 * *cap 0. The capacity at least doubles (16 elements at first), so appending one element at a
 * time costs linear time overall. Returns NULL when there is room, or &vm_error_nomem (which
 * needs no vm_error_destroy) when need * elem_size overflows or realloc fails; then the array
 * and *cap are as they were. Limits on what an input may make the caller hold (file size, task
 * count) stay with the caller.
 */
struct vm_error *grow_array(void *items, size_t *cap, size_t need, size_t elem_size);

#endif
