/* Helpers for fuzz targets that need the input as a file: an anonymous in-memory file. */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

/* Write data to a memfd and give its /proc path; returns the fd (close it after) or -1. */
static inline int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t pathsz)
{
	int fd = memfd_create("fuzz-dump", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t done = 0;
	while (done < size) {
		ssize_t n = write(fd, data + done, size - done);
		if (n <= 0) {
			close(fd);
			return -1;
		}
		done += (size_t)n;
	}
	snprintf(path, pathsz, "/proc/self/fd/%d", fd);
	return fd;
}

#endif
