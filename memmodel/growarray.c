#include "growarray.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { GROW_ARRAY_FIRST = 16 };

struct vm_error *grow_array(void *items, size_t *cap, size_t need, size_t elem_size)
{
	if (need <= *cap)
		return NULL;
	size_t max = elem_size ? SIZE_MAX / elem_size : 0;
	if (need > max)
		return &vm_error_nomem;
	size_t ncap = *cap ? *cap : GROW_ARRAY_FIRST;
	while (ncap < need)
		ncap = ncap > max / 2 ? max : ncap * 2;
	if (ncap > max)
		ncap = max;
	/* The caller's pointer has its own type (struct x *): copy it as bytes, not through a void **. */
	void *old;
	memcpy(&old, items, sizeof(old));
	void *grown = realloc(old, ncap * elem_size);
	if (!grown)
		return &vm_error_nomem;
	memcpy(items, &grown, sizeof(grown));
	*cap = ncap;
	return NULL;
}
