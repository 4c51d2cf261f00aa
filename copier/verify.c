/* verify.c -- content checksums that skip holes.
 *
 * The checksum is the sum over all 4 KiB blocks that are not entirely zero
 * of block_hash(block, offset), plus a hash of the size (hash.c says why a
 * sum). Each file is read only where it has data, so a sparse source and its
 * sparse copy are both read at data speed, and a hole on one side matches
 * written zeros on the other. Reads prefer O_DIRECT so the destination is
 * checked as the disk holds it, not as the page cache remembers it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define VERIFY_BUF (1u << 20)

static bool all_zero(const unsigned char *p, size_t n)
{
	static const unsigned char zero[COPIER_ALIGN];

	return memcmp(p, zero, n) == 0;
}

static uint64_t sum_blocks(const unsigned char *buf, size_t n, uint64_t off)
{
	uint64_t sum = 0;
	size_t i, len;

	for (i = 0; i < n; i += COPIER_ALIGN) {
		len = n - i < COPIER_ALIGN ? n - i : COPIER_ALIGN;
		if (!all_zero(buf + i, len))
			sum += block_hash(buf + i, COPIER_ALIGN, off + i);
	}
	return sum;
}

/* Read [s, e) of fd (aligned) and add its blocks to *sum. */
static int sum_range(int rfd, unsigned char *buf, uint64_t s, uint64_t e,
		     uint64_t size, uint64_t *sum)
{
	ssize_t n;
	size_t want;

	while (s < e) {
		want = e - s < VERIFY_BUF ? (size_t)(e - s) : VERIFY_BUF;
		n = pread(rfd, buf, want, (off_t)s);
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		if ((uint64_t)n > size - s)   /* past EOF: file grew, ignore */
			n = (ssize_t)(size - s);
		if (n % COPIER_ALIGN)  /* tail block: hashed zero-padded */
			memset(buf + n, 0, COPIER_ALIGN - n % COPIER_ALIGN);
		*sum += sum_blocks(buf, align_up((uint64_t)n, COPIER_ALIGN), s);
		s += align_up((uint64_t)n, COPIER_ALIGN);
		if (s >= size)
			break;
	}
	return 0;
}

int checksum_own_fd(int fd, uint64_t *out)
{
	uint64_t off = 0, s, e, size, sum = 0;
	unsigned char *buf;
	struct stat st;
	int r = 0, rfd;

	if (fstat(fd, &st) < 0)
		return -errno;
	size = (uint64_t)st.st_size;
	rfd = reopen_noatime(fd, O_RDONLY | O_DIRECT);
	if (rfd < 0)
		rfd = dup(fd);
	if (rfd < 0)
		return -errno;
	if (posix_memalign((void **)&buf, COPIER_ALIGN, VERIFY_BUF + COPIER_ALIGN)) {
		close(rfd);
		return -ENOMEM;
	}
	/* Extents are rounded out to whole blocks; off never moves backwards,
	 * so a block two small extents share is hashed once. */
	while (!r && (r = extent_next(fd, off, size, &s, &e)) > 0) {
		s = align_down(s, COPIER_ALIGN);
		s = s < off ? off : s;
		off = align_up(e, COPIER_ALIGN);
		r = sum_range(rfd, buf, s, off, size, &sum);
	}
	free(buf);
	close(rfd);
	*out = sum + block_hash(&size, sizeof(size), ~0ull);
	return r;
}

int copier_checksum(int fd, uint64_t *sum)
{
	int own, r;

	own = reopen_noatime(fd, O_RDONLY);
	if (own < 0)
		return -errno;
	r = checksum_own_fd(own, sum);
	close(own);
	return r;
}
