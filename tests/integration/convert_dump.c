/*
 * Test driver for dump_convert (the user-facing command is `vmcore-gdbserver convert`).
 * Usage: convert_dump --compress=none|zlib|lzo|snappy|zstd [--dump-level=N] IN... OUT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "dump.h"

static void progress(void *arg, uint64_t done, uint64_t total)
{
	(void)arg;
	fprintf(stderr, "\rconvert: %llu/%llu pages", (unsigned long long)done, (unsigned long long)total);
	if (done == total)
		fputc('\n', stderr);
}

int main(int argc, char **argv)
{
	struct convert_options o = { .compression = CONVERT_ZSTD, .progress = progress };
	int first = 1;
	for (; first < argc && strncmp(argv[first], "--", 2) == 0; first++) {
		struct vm_error *err = NULL;
		if (strncmp(argv[first], "--compress=", 11) == 0)
			err = convert_compression_parse(argv[first] + 11, &o.compression);
		else if (strncmp(argv[first], "--dump-level=", 13) == 0)
			o.dump_level = atoi(argv[first] + 13);
		else
			err = vm_error_create(VM_ERR_INVALID, 0, "unknown option %s", argv[first]);
		if (err) {
			fprintf(stderr, "convert_dump: %s\n", err->message);
			return 2;
		}
	}
	if (argc - first < 2) {
		fprintf(stderr, "usage: convert_dump --compress=KIND [--dump-level=N] IN... OUT\n");
		return 2;
	}
	struct dump *d;
	struct vm_error *err = dump_open((const char *const *)argv + first, (size_t)(argc - first - 1), NULL, &d);
	if (!err)
		err = dump_convert(d, &o, argv[argc - 1]);
	if (err) {
		fprintf(stderr, "convert_dump: %s\n", err->message);
		return 1;
	}
	dump_close(d);
	return 0;
}
