/* mig_io.c - a migrating file's I/O: through the overlay, mirrored when asked.
 *
 * While copying, writes go to the differencing file only (the base is frozen).
 * From converge on, mirror_fd is the merge target (the destination copy, or the
 * base when cancelling) and every change is applied to the overlay and to the
 * target while holding the locks of the 1 MiB regions it touches. The converge pass
 * copies a region under the same lock, so a write and the pass never interleave in
 * one region: the target ends up equal to the overlay's view after a single pass.
 *
 * A failing mirror write is not the writer's problem: the differencing file holds
 * the data, so the write succeeds and the migration records the error and rolls
 * back instead of switching.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "mig_int.h"
#include "overlay.h"
#include "paths.h"

/* The regions [off, off+len) touches, as a bit set (a write is at most 1 MiB, so a
 * few regions: never a wrap of all MIG_REGIONS). */
static uint64_t region_mask(off_t off, size_t len)
{
	uint64_t first = (uint64_t)off >> MIG_REGION_SHIFT;
	uint64_t last = ((uint64_t)off + (len ? len - 1 : 0)) >> MIG_REGION_SHIFT;
	uint64_t mask = 0;

	assert(last - first < MIG_REGIONS);
	for (uint64_t r = first; r <= last; r++)
		mask |= 1ull << (r % MIG_REGIONS);
	return mask;
}

/* While mirroring, a write holds m->span shared and its regions' locks, taken in
 * ascending index so two multi-region writers cannot deadlock; 0 (nothing held)
 * before mirroring, when no merge runs. */
static uint64_t regions_lock(struct mig *m, off_t off, size_t len)
{
	uint64_t mask;

	if (m->mirror_fd < 0)
		return 0;
	lk_rdlock(&m->span, LK_REGION);
	mask = region_mask(off, len);
	for (int i = 0; i < MIG_REGIONS; i++)
		if (mask & (1ull << i))
			lk_lock(&m->region[i], LK_REGION);
	return mask;
}

static void regions_unlock(struct mig *m, uint64_t mask)
{
	if (!mask)
		return;
	for (int i = MIG_REGIONS - 1; i >= 0; i--)
		if (mask & (1ull << i))
			lk_unlock(&m->region[i], LK_REGION);
	lk_rwunlock(&m->span, LK_REGION);
}

/* A change of size or a discard while mirroring excludes every write and merge
 * chunk at once: m->span exclusive, rather than all 64 region locks. */
static bool span_lock(struct mig *m)
{
	if (m->mirror_fd < 0)
		return false;
	lk_wrlock(&m->span, LK_REGION);
	return true;
}

static void span_unlock(struct mig *m, bool held)
{
	if (held)
		lk_rwunlock(&m->span, LK_REGION);
}

static void mirror_failed(struct mig *m, int err)
{
	/* First error wins; the migration thread reads it before switching. */
	int zero = 0;

	atomic_compare_exchange_strong(&m->mirror_err, &zero, err);
}

static void touch(struct mig *m)
{
	atomic_store(&m->mtime_ns, (long long)vds_now_ns(CLOCK_REALTIME));
}

/* A read moves the atime as the source's mount would (fs/inode.c's relatime rule:
 * only when the atime is not newer than mtime or ctime, or is a day old). */
static void accessed(struct mig *m)
{
	long long at = atomic_load(&m->atime_ns), mt = atomic_load(&m->mtime_ns);
	long long mtime = mt ? mt : m->base_mtime_ns, ctime = mt ? mt : m->base_ctime_ns;
	long long now;

	if (m->atime_rule & ST_NOATIME)
		return;
	now = (long long)vds_now_ns(CLOCK_REALTIME);
	if ((m->atime_rule & ST_RELATIME) && at > mtime && at > ctime &&
	    now - at < 24 * 3600 * 1000000000ll)
		return;
	atomic_store(&m->atime_ns, now);
}

static ssize_t route_read(void *arg, void *buf, size_t len, off_t off)
{
	struct mig *m = arg;
	ssize_t n = overlay_read(m->ov, buf, len, off);

	if (n >= 0 && len)
		accessed(m);
	return n;
}

/* All of buf at off, or an error. */
static int write_exact(int fd, const void *buf, size_t len, off_t off)
{
	ssize_t n = pwrite_all(fd, buf, len, off);

	return n < 0 ? (int)n : (size_t)n == len ? 0 : -EIO;
}

/* Mirror the block at start as the overlay reads it now (cut at its size). */
static int mirror_block(struct mig *m, uint64_t start, uint32_t bs)
{
	char *blk = malloc(bs);
	ssize_t n = blk ? overlay_read(m->ov, blk, bs, start) : -ENOMEM;
	int ret = n < 0 ? (int)n : write_exact(m->mirror_fd, blk, n, start);

	free(blk);
	return ret;
}

/* Mirror a write of [off, off+len) the overlay has taken. The target gets whole
 * blocks: a write into part of a block the overlay held as zeroed makes all of the
 * block data (zeros around the bytes written), while the target's other bytes of
 * it may still be the base's, and a merge pass that has gone by does not come back
 * for the block (its iterator may miss a block whose state changed). So a block
 * written in part goes to the target as the overlay now reads it. The region locks
 * held cover it: blocks divide regions. */
static int mirror_write(struct mig *m, const char *buf, size_t len, off_t off)
{
	uint32_t bs = overlay_block_size(m->ov);
	uint64_t end = (uint64_t)off + len, head = (uint64_t)off & ~(uint64_t)(bs - 1);
	uint64_t tail = end & ~(uint64_t)(bs - 1);	/* start of a block written in part at the end */
	uint64_t mid = head == (uint64_t)off ? head : head + bs;	/* first whole block */
	int ret = 0;

	assert(bs <= 1u << MIG_REGION_SHIFT);
	if (head + bs >= end && (head != (uint64_t)off || end != tail))
		return mirror_block(m, head, bs);	/* one block, written in part */
	if (mid != (uint64_t)off)
		ret = mirror_block(m, head, bs);
	if (!ret && tail > mid)
		ret = write_exact(m->mirror_fd, buf + (mid - off), tail - mid, mid);
	if (!ret && tail != end)
		ret = mirror_block(m, tail, bs);
	return ret;
}

static ssize_t route_write(void *arg, const void *buf, size_t len, off_t off)
{
	struct mig *m = arg;
	uint64_t mask = regions_lock(m, off, len);
	ssize_t n = overlay_write(m->ov, buf, len, off);
	int ret;

	if (n > 0 && m->mirror_fd >= 0 && (ret = mirror_write(m, buf, n, off)))
		mirror_failed(m, ret);
	regions_unlock(m, mask);
	if (n > 0)
		touch(m);
	return n;
}

/* A flush makes the write durable where recovery may look for it: the overlay, and
 * while mirroring also the mirror target, since from the "switching" record on the
 * copy alone is the file (which is why the switch itself needs no data flush). */
static int route_flush(void *arg, int datasync)
{
	struct mig *m = arg;
	int ret = overlay_flush(m->ov);

	(void)datasync;
	if (!ret && m->mirror_fd >= 0 && fdatasync(m->mirror_fd) < 0)
		ret = -errno;
	return ret;
}

static uint64_t ov_size(struct mig *m)
{
	struct overlay_stats st;

	overlay_stats(m->ov, &st);
	return st.size;
}

/* Make [off, off+len) of fd read as zeros: punch when the filesystem can, write
 * zeros otherwise. Used for the mirror and by the converge pass. */
int mig_zero_range(int fd, off_t off, off_t len)
{
	static const char zeros[65536];

	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) == 0)
		return 0;
	for (off_t done = 0; done < len;) {
		size_t n = len - done < (off_t)sizeof(zeros) ? (size_t)(len - done) : sizeof(zeros);
		int ret = write_exact(fd, zeros, n, off + done);

		if (ret)
			return ret;
		done += n;
	}
	return 0;
}

static int resize_locked(struct mig *m, uint64_t size)
{
	int ret = overlay_resize(m->ov, size);

	if (!ret && m->mirror_fd >= 0 && ftruncate(m->mirror_fd, size) < 0)
		mirror_failed(m, -errno);
	return ret;
}

static int route_fallocate(void *arg, int mode, off_t off, off_t len)
{
	struct mig *m = arg;
	bool zeroing = mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE);
	bool keep = mode & FALLOC_FL_KEEP_SIZE;
	uint64_t end = (uint64_t)off + len;
	bool span;
	int ret = 0;

	if (mode & ~(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE))
		return -EOPNOTSUPP;
	span = (!keep || zeroing) && span_lock(m);
	if (!keep && end > ov_size(m))
		ret = resize_locked(m, end);
	if (!ret && zeroing) {
		uint64_t size = ov_size(m);
		off_t l = end > size ? (off_t)(size - off) : len;

		if ((uint64_t)off < size)
			ret = overlay_discard(m->ov, off, l);
		if (!ret && (uint64_t)off < size && m->mirror_fd >= 0 && (ret = mig_zero_range(m->mirror_fd, off, l)))
			mirror_failed(m, ret), ret = 0;
	}
	span_unlock(m, span);
	if (!ret)
		touch(m);
	return ret;
}

/* Where the base shows through, in [pos, limit): the base's own answer up to its
 * size at overlay-on (end), and past that a hole, since those bytes read as zeros.
 * -1 when the answer lies beyond limit. */
static off_t base_seek(int fd, uint64_t pos, uint64_t end, uint64_t limit, int whence)
{
	off_t r = pos < end ? lseek(fd, pos, whence) : -1;

	if (r >= 0 && (uint64_t)r < end)
		return r;
	if (whence == SEEK_DATA)
		return -1;
	if (r < 0 && pos < end)
		return pos;		/* the base file ends early: zeros */
	return end < limit ? (off_t)(pos > end ? pos : end) : -1;
}

/* SEEK_DATA/SEEK_HOLE over what the file reads as: blocks the differencing file
 * holds are data, discarded ones holes, and the base answers for the rest. Racing
 * writes may move the answer, as on any file. */
static off_t route_lseek(void *arg, off_t off, int whence)
{
	struct mig *m = arg;
	struct overlay_stats st;
	uint64_t pos = off;

	overlay_stats(m->ov, &st);
	if (off < 0 || pos >= st.size)
		return -ENXIO;
	while (pos < st.size) {
		struct overlay_extent e;
		uint64_t cursor = pos;
		bool changed = overlay_next_extent(m->ov, &cursor, &e) == 1;
		uint64_t limit = changed ? e.off : st.size;
		off_t r;

		if (changed && e.off <= pos) {
			if ((e.state == OVERLAY_DATA) == (whence == SEEK_DATA))
				return pos;
			pos = e.off + e.len;
			continue;
		}
		r = base_seek(m->base_fd, pos, st.base_size < limit ? st.base_size : limit, limit,
			      whence);
		if (r >= 0)
			return r;
		pos = limit;
	}
	return whence == SEEK_DATA ? -ENXIO : (off_t)st.size;
}

static int route_truncate(void *arg, off_t size)
{
	struct mig *m = arg;
	bool span = span_lock(m);
	int ret = resize_locked(m, size);

	span_unlock(m, span);
	if (!ret)
		touch(m);
	return ret;
}

static void route_fix_stat(void *arg, struct stat *st)
{
	struct mig *m = arg;
	long long mt = atomic_load(&m->mtime_ns), at = atomic_load(&m->atime_ns);

	st->st_size = ov_size(m);
	st->st_atim.tv_sec = at / 1000000000ll;
	st->st_atim.tv_nsec = at % 1000000000ll;
	if (mt) {
		st->st_mtim.tv_sec = st->st_ctim.tv_sec = mt / 1000000000ll;
		st->st_mtim.tv_nsec = st->st_ctim.tv_nsec = mt % 1000000000ll;
	}
}

/* The route a migrating file's I/O takes while the migration owns it. */
const struct vroute mig_route = {
	.read = route_read,
	.write = route_write,
	.flush = route_flush,
	.fallocate = route_fallocate,
	.lseek = route_lseek,
	.truncate = route_truncate,
	.fix_stat = route_fix_stat,
};
