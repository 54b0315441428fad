/*
 * Flattened files: the record index (overlaps, gaps, bad sizes, missing end marker) and reads
 * through it. The input gets a valid flat header prepended so the fuzzer spends its time on records.
 */
#include <endian.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dump_priv.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t total = FLAT_HEADER_SIZE + size;
	uint8_t *file = calloc(1, total);
	if (!file)
		return 0;
	memcpy(file, "makedumpfile", 12);
	uint64_t one = htobe64(1);
	memcpy(file + 16, &one, 8);
	memcpy(file + 24, &one, 8);
	memcpy(file + FLAT_HEADER_SIZE, data, size);
	char path[64];
	int fd = fuzz_memfile(file, total, path, sizeof(path));
	free(file);
	if (fd < 0)
		return 0;
	struct dump_source src;
	struct vm_error *err = source_open(path, &src);
	if (!err) {
		uint8_t buf[4096];
		uint64_t offs[] = { 0, src.size / 2, src.size > 100 ? src.size - 100 : 0 };
		for (size_t i = 0; i < 3; i++) {
			size_t len = src.size - offs[i] < sizeof(buf) ? (size_t)(src.size - offs[i]) : sizeof(buf);
			vm_error_destroy(source_read(&src, offs[i], buf, len));
		}
		vm_error_destroy(source_read(&src, src.size, buf, 1));
	}
	vm_error_destroy(err);
	source_close(&src);
	close(fd);
	return 0;
}
