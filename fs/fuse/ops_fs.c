/* ops_fs.c - whole-filesystem operations: init (what we ask of the kernel) and statfs.
 *
 * init raises the limits that decide throughput through FUSE: 1 MiB requests
 * (max_write, and max_pages derived from it by libfuse), a deep background queue so
 * that io_uring/libaio direct I/O at high queue depth is not throttled to libfuse's
 * default of 12, async direct I/O, readdirplus and parallel directory operations.
 * Locks (flock, POSIX, OFD) are deliberately not forwarded: the kernel then keeps
 * them itself, which is exact for a single-host mount and what qemu's image locking
 * needs.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

#include "iobuf.h"
#include "vfs.h"

#define VDS_MAX_BACKGROUND	256

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->max_write = VDS_IO_MAX;
	conn->max_read = 0;
	conn->max_readahead = VDS_IO_MAX;
	conn->max_background = VDS_MAX_BACKGROUND;
	conn->congestion_threshold = VDS_MAX_BACKGROUND * 3 / 4;
	conn->want |= conn->capable & (FUSE_CAP_ASYNC_DIO | FUSE_CAP_ASYNC_READ |
				       FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_READDIRPLUS |
				       FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_EXPORT_SUPPORT);
	conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE |
			FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS | FUSE_CAP_WRITEBACK_CACHE);
}

/* Sum over datastores, counting a filesystem that holds several of them once. */
static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct vfs *v = req_vfs(req);
	dev_t seen[VDS_MAX_DS];
	uint64_t blocks = 0, bfree = 0, bavail = 0, files = 0, ffree = 0;
	unsigned long namemax = 255;
	struct statvfs sv, out;
	int nseen = 0;

	(void)ino;
	for (int i = 0; i < v->store->nds; i++) {
		bool dup = false;

		if (!store_live(v->store, i))
			continue;
		if (fstatvfs(v->store->ds[i].fd, &sv) < 0) {
			fuse_reply_err(req, errno);
			return;
		}
		for (int j = 0; j < nseen; j++)
			dup |= seen[j] == v->store->ds[i].dev;
		if (dup)
			continue;
		seen[nseen++] = v->store->ds[i].dev;
		blocks += (uint64_t)sv.f_blocks * sv.f_frsize / 4096;
		bfree += (uint64_t)sv.f_bfree * sv.f_frsize / 4096;
		bavail += (uint64_t)sv.f_bavail * sv.f_frsize / 4096;
		files += sv.f_files;
		ffree += sv.f_ffree;
		if (sv.f_namemax < namemax)
			namemax = sv.f_namemax;
	}
	memset(&out, 0, sizeof(out));
	out.f_bsize = out.f_frsize = 4096;
	out.f_blocks = blocks;
	out.f_bfree = bfree;
	out.f_bavail = bavail;
	out.f_files = files;
	out.f_ffree = out.f_favail = ffree;
	out.f_namemax = namemax;
	fuse_reply_statfs(req, &out);
}

void vds_ops_fs(struct fuse_lowlevel_ops *ops)
{
	ops->init = op_init;
	ops->statfs = op_statfs;
}
