/* io.c - whole-buffer positional I/O on the caller's descriptors.
 *
 * The kernel may return short counts (signals, NFS) and EINTR; every caller here
 * wants all-or-error, so the loops live in one place.  Reads past end of file give
 * zeros: a base shorter than the logical size, or a sparse differencing file whose
 * tail was never written, reads like a hole.
 *
 * O_DIRECT: when the caller opened an fd with O_DIRECT, offset, length and memory
 * must be aligned.  Callers in this library keep offset and length 4 KiB aligned on
 * direct fds (block size is >= 4 KiB; partial writes go through a read-modify-write
 * of aligned sectors in rw.c); these helpers bounce through an aligned buffer when
 * only the memory is misaligned, and widen reads to aligned bounds.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <linux/falloc.h>

#include "internal.h"

void *ov_alloc(size_t len)
{
	void *p = NULL;

	if (posix_memalign(&p, OV_ALIGN, len ? ov_round_up(len, OV_ALIGN) : OV_ALIGN))
		return NULL;
	memset(p, 0, len);
	return p;
}

bool ov_fd_direct(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && (fl & O_DIRECT);
}

static bool aligned(const void *buf, size_t len, uint64_t off)
{
	return ((uintptr_t)buf % OV_ALIGN) == 0 && len % OV_ALIGN == 0 && off % OV_ALIGN == 0;
}

/* Read until len bytes or EOF; zero the rest. */
static int pread_loop(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) {
			memset(p, 0, len);
			return 0;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int pwrite_loop(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int ov_pread(int fd, bool direct, void *buf, size_t len, uint64_t off)
{
	if (fd < 0)
		return -EBADF;
	if (!direct || aligned(buf, len, off))
		return pread_loop(fd, buf, len, off);

	uint64_t start = off / OV_ALIGN * OV_ALIGN;
	size_t span = (size_t)(ov_round_up(off + len, OV_ALIGN) - start);
	uint8_t *tmp = ov_alloc(span);
	int ret;

	if (!tmp)
		return -ENOMEM;
	ret = pread_loop(fd, tmp, span, start);
	if (!ret)
		memcpy(buf, tmp + (off - start), len);
	free(tmp);
	return ret;
}

int ov_pwrite(int fd, bool direct, const void *buf, size_t len, uint64_t off)
{
	if (fd < 0)
		return -EBADF;
	if (!direct || ((uintptr_t)buf % OV_ALIGN) == 0)
		return pwrite_loop(fd, buf, len, off);

	uint8_t *tmp = ov_alloc(len);
	int ret;

	if (!tmp)
		return -ENOMEM;
	memcpy(tmp, buf, len);
	ret = pwrite_loop(fd, tmp, len, off);
	free(tmp);
	return ret;
}

/* Release space only; a failure changes nothing a reader can see, so filesystems
 * without hole punching are fine. */
int ov_punch(int fd, uint64_t off, uint64_t len)
{
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len))
		return -errno;
	return 0;
}

/* Make a range of the target read as zeros: punch if the filesystem can, else
 * write zeros (same result, more I/O). */
int ov_zero_range(int fd, bool direct, uint64_t off, uint64_t len)
{
	if (!ov_punch(fd, off, len))
		return 0;

	size_t chunk = len < (1u << 20) ? (size_t)len : (1u << 20);
	uint8_t *z = ov_alloc(chunk);
	int ret = 0;

	if (!z)
		return -ENOMEM;
	while (len && !ret) {
		size_t n = len < chunk ? (size_t)len : chunk;

		ret = ov_pwrite(fd, direct, z, n, off);
		off += n;
		len -= n;
	}
	free(z);
	return ret;
}
