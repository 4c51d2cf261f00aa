/* space.c -- free-space pre-check before a copy starts.
 *
 * A copy needs as many bytes as the source has allocated (holes cost
 * nothing), less what a partial destination of the same name already holds
 * (it is resumed or truncated, either way its blocks are reused), plus a
 * margin for metadata and for everybody else on that filesystem. Refusing
 * up front is kinder than failing with ENOSPC after an hour; the engine
 * still handles ENOSPC, since others may fill the disk meanwhile.
 * A filesystem that reports no size at all (f_blocks == 0: ramfs, some FUSE
 * filesystems) cannot be checked; refusing every copy there would be wrong,
 * so the check passes and ENOSPC, if it comes, ends the copy cleanly.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "internal.h"

static double mib(uint64_t b) { return (double)b / 1048576.0; }

int copier_check_space(int src_fd, int dst_dirfd, const char *dst_rel,
		       uint64_t margin, char *msg, size_t msglen)
{
	struct stat src, dst;
	struct statvfs vfs;
	uint64_t need, have, reuse = 0;

	if (fstat(src_fd, &src) < 0) {
		snprintf(msg, msglen, "free-space check: stat of source failed");
		return -errno;
	}
	if (fstatvfs(dst_dirfd, &vfs) < 0) {
		snprintf(msg, msglen, "free-space check: statvfs of destination failed");
		return -errno;
	}
	if (vfs.f_blocks == 0)
		return 0;
	if (dst_rel && fstatat(dst_dirfd, dst_rel, &dst, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(dst.st_mode))
		reuse = (uint64_t)dst.st_blocks * 512;
	need = (uint64_t)src.st_blocks * 512;
	need = (need > reuse ? need - reuse : 0) + margin;
	have = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	if (have >= need)
		return 0;
	snprintf(msg, msglen,
		 "not enough free space on destination: need %.1f MiB (%.1f MiB data + %.1f MiB margin), %.1f MiB free",
		 mib(need), mib(need - margin), mib(margin), mib(have));
	return -ENOSPC;
}
