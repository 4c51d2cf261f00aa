/* zrange.c - does fallocate(FALLOC_FL_ZERO_RANGE) on a datastore really zero?
 *
 * GlusterFS's FUSE client (10.3) answers ZERO_RANGE with success and leaves the
 * old bytes in place (README, "Filesystems tested as datastores"). qemu sends a
 * guest's write-zeroes requests as ZERO_RANGE on a cache=none disk, so passing it
 * through there hands the guest back data it asked to be zeroed. We cannot tell
 * from statfs which filesystem lies, so each datastore is tried once at open:
 * a scratch file in .vdsfs/ is written, a range in its middle zeroed, and read
 * back. The answer decides what vfile_fallocate does with ZERO_RANGE there
 * (store_zero_range). Punching a hole and allocating the range again is the same
 * contract as ZERO_RANGE (reads as zeros, blocks allocated, size as KEEP_SIZE
 * says), so a datastore that punches correctly keeps the operation.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <string.h>
#include <unistd.h>

#include "datastore.h"

#define PROBE_NAME	"zero-range-probe"
#define PROBE_LEN	16384	/* 4 pages: the zeroed range is the middle two */

/* 1 if the range of fd reads back as zeros, 0 if not, -errno on a read error. */
static int reads_zero(int fd, off_t off, size_t len)
{
	char buf[PROBE_LEN];
	ssize_t n = pread(fd, buf, len, off);

	if (n < 0)
		return -errno;
	if ((size_t)n != len)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (buf[i])
			return 0;
	return 1;
}

/* Try mode on a fresh PROBE_LEN file of 0xa5 bytes: 1 if [4096, 12288) then reads
 * as zeros and the rest as before, 0 if the call succeeded but did not, -errno if
 * the call (or the scratch file) failed. */
static int try_mode(int dirfd, int mode)
{
	char buf[PROBE_LEN];
	int fd, ret;

	fd = openat(dirfd, PROBE_NAME, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	memset(buf, 0xa5, sizeof(buf));
	if (pwrite(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf) || fsync(fd) < 0)
		ret = -EIO;
	else if (fallocate(fd, mode, 4096, 8192) < 0)
		ret = -errno;
	else if ((ret = reads_zero(fd, 4096, 8192)) == 1 && pread(fd, buf, 4096, 12288) == 4096 &&
		 (unsigned char)buf[0] != 0xa5)
		ret = 0;	/* zeroed past the range: as wrong as not at all */
	close(fd);
	unlinkat(dirfd, PROBE_NAME, 0);
	return ret;
}

enum ds_zero_range ds_probe_zero_range(int state_fd)
{
	int r = try_mode(state_fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE);

	if (r == 1)
		return DS_ZR_NATIVE;
	if (r < 0 && r != -EOPNOTSUPP)
		return DS_ZR_NATIVE;	/* the probe itself failed: leave the call to say so */
	if (try_mode(state_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) == 1)
		return r == 0 ? DS_ZR_EMULATE : DS_ZR_NATIVE;
	return r == 0 ? DS_ZR_REFUSE : DS_ZR_NATIVE;
}

int ds_zero_range(const struct datastore *ds, int fd, int mode, off_t off, off_t len)
{
	if (ds->zero_range == DS_ZR_REFUSE)
		return -EOPNOTSUPP;
	if (ds->zero_range == DS_ZR_NATIVE)
		return fallocate(fd, mode, off, len) < 0 ? -errno : 0;
	/* Punch, then allocate again: the allocation also extends the size unless
	 * KEEP_SIZE, as ZERO_RANGE would. */
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) < 0)
		return -errno;
	if (fallocate(fd, mode & FALLOC_FL_KEEP_SIZE, off, len) < 0)
		return -errno;
	return 0;
}
