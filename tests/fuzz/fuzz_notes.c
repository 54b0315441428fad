/* Note blobs (PT_NOTE contents / kdump note area): NT_PRSTATUS, QEMU CPU state, VMCOREINFO. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "notes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct note_set set;
	struct vm_error *err = notes_parse(data, size, "fuzz", 0, &set);
	if (err) {
		vm_error_destroy(err);
		return 0;
	}
	for (size_t i = 0; i < set.ncpus; i++)
		if (set.cpus[i].index != (int)i)
			abort();
	if (set.vmcoreinfo && strlen(set.vmcoreinfo) != set.vmcoreinfo_len)
		abort();
	notes_free(&set);
	return 0;
}
