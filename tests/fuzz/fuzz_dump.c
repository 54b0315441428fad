/*
 * Whole-dump fuzzing: the input is a dump file (ELF, kdump-compressed or flattened). Covers
 * headers, program headers, bitmaps, page descriptors, decompression and notes. Every input must
 * open cleanly or fail with an error; reads of the first pages must do the same.
 */
#include <stdint.h>
#include <stdlib.h>

#include "dump.h"
#include "fuzz_util.h"

#define PAGES_TRIED 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	int fd = fuzz_memfile(data, size, path, sizeof(path));
	if (fd < 0)
		return 0;
	const char *paths[] = { path };
	struct dump_options opts = { .cache_pages = 8 };
	struct dump *d;
	struct vm_error *err = dump_open(paths, 1, &opts, &d);
	if (err) {
		if (!err->message)
			abort();
		vm_error_destroy(err);
		close(fd);
		return 0;
	}
	const struct dump_desc *desc = dump_describe(d);
	uint8_t *page = malloc(desc->page_size);
	const struct dump_cpu_note *notes;
	dump_cpu_notes(d, &notes);
	const char *vmci = dump_vmcoreinfo(d);
	if (vmci)
		(void)vmci[0];
	for (uint64_t pfn = 0; page && pfn < PAGES_TRIED && pfn <= desc->max_pfn; pfn++) {
		uint64_t pa = pfn * desc->page_size;
		enum vm_errcode st = dump_page_state(d, pa);
		err = dump_read_phys(d, pa, page, desc->page_size, pfn & 1);
		/* A page said to be present but failing to read may only be corrupt data. */
		if (st == 0 && err && err->code != VM_ERR_CORRUPT && err->code != VM_ERR_INCOMPLETE &&
		    err->code != VM_ERR_OS && err->code != VM_ERR_FORMAT)
			abort();
		vm_error_destroy(err);
	}
	/* A read straddling two pages, and one far away. */
	if (page && desc->page_size >= 2) {
		vm_error_destroy(dump_read_phys(d, desc->page_size / 2, page, desc->page_size, true));
		vm_error_destroy(dump_read_phys(d, UINT64_MAX - 7, page, 8, false));
	}
	free(page);
	dump_close(d);
	close(fd);
	return 0;
}
