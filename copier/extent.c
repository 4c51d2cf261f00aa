/* extent.c -- walking a file's data extents with SEEK_DATA/SEEK_HOLE.
 *
 * lseek() moves the file offset, which belongs to the open file description
 * the caller may share, so the copier always passes its own descriptor here
 * (copy.c reopens the source). A filesystem without hole support answers
 * SEEK_DATA with the offset itself and SEEK_HOLE with the size, i.e. one
 * extent; EINVAL/ENOTSUP from an old one is treated the same way.
 */
#include <errno.h>
#include <unistd.h>

#include "internal.h"

int extent_next(int fd, uint64_t off, uint64_t size, uint64_t *start, uint64_t *end)
{
	off_t d, h;

	if (off >= size)
		return 0;
	d = lseek(fd, (off_t)off, SEEK_DATA);
	if (d < 0) {
		if (errno == ENXIO)
			return 0;
		if (errno != EINVAL && errno != ENOTSUP)
			return -errno;
		d = (off_t)off;
		h = (off_t)size;
	} else {
		h = lseek(fd, d, SEEK_HOLE);
		if (h < 0)
			h = (off_t)size;
	}
	if ((uint64_t)d >= size)
		return 0;
	*start = (uint64_t)d;
	*end = (uint64_t)h > size ? size : (uint64_t)h;
	return 1;
}

int extent_data_bytes(int fd, uint64_t size, uint64_t *bytes)
{
	uint64_t off = 0, s, e, sum = 0;
	int r;

	while ((r = extent_next(fd, off, size, &s, &e)) > 0) {
		sum += e - s;
		off = e;
	}
	*bytes = sum;
	return r < 0 ? r : 0;
}
