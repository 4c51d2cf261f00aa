/* rw.c - merged reads, writes and discards.
 *
 * Read: walk the range in runs of blocks with equal state and issue one pread per
 * run: base runs from the base (bytes past the base's size read zero), data runs
 * from the same offsets in the differencing file, zero runs are memset.  No lock
 * at all (geo_seq in internal.h guards against resize): a read racing a write may
 * see the old or the new block, as with a disk.
 *
 * Write, per block piece:
 *   - block already DATA (diff not O_DIRECT): pwrite in place, no lock.  Two
 *     writers to the same DATA block behave like a disk: each byte ends up from
 *     one of them.
 *   - otherwise take the block's stripe lock and re-read its state.  A whole-block
 *     piece is written as is; a partial piece is completed from the block's current
 *     contents (base, zeros, or, for an O_DIRECT diff, the aligned sectors around
 *     it) and written whole.  Only then does the state become DATA, so a reader
 *     that sees DATA always finds the data, and a second writer to the same block
 *     waits on the lock and then sees DATA and the first writer's bytes.
 *   - afterwards ov_mark_changed() dirties the block for a running merge.
 * Consecutive whole blocks go out as one pwrite (up to 256 KiB, 1 MiB on O_DIRECT)
 * under the stripe locks of all of them, taken in ascending order, unless all are
 * already DATA; then the map changes with one CAS per 32 blocks.
 *
 * Discard: whole blocks become ZERO under the stripe lock and their space is
 * punched; partial pieces are written as zeros (skipped if already ZERO).
 */
#include <limits.h>
#include <stdlib.h>

#include "internal.h"

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static int read_base(struct overlay *ov, uint8_t *buf, size_t len, uint64_t off)
{
	uint64_t n = off >= ov->base_size ? 0 : min64(len, ov->base_size - off);
	int ret = 0;

	if (n)
		ret = ov_pread(ov->base_fd, ov->base_direct, buf, (size_t)n, off);
	if (n < len)
		memset(buf + n, 0, len - n);
	return ret;
}

static int read_run(struct overlay *ov, unsigned st, uint8_t *buf, size_t len, uint64_t off)
{
	switch (st) {
	case OVERLAY_BASE:
		return read_base(ov, buf, len, off);
	case OVERLAY_DATA:
		return ov_pread(ov->diff_fd, ov->diff_direct, buf, len, ov->data_off + off);
	default:
		memset(buf, 0, len);
		return 0;
	}
}

/* Read through one map array.  -EAGAIN: the range runs past the array, which only
 * happens to a lockless reader racing a resize (it then retries). */
static int read_with_map(struct overlay *ov, _Atomic uint64_t *map, void *buf, size_t len,
			 uint64_t off)
{
	uint8_t *p = buf;
	uint64_t end = off + len;

	if (len && ((end - 1) >> ov->shift) / 32 >= ov_map_words(map))
		return -EAGAIN;
	while (off < end) {
		uint64_t b = off >> ov->shift;
		unsigned st = ov_map_get_in(map, b);
		uint64_t run_end = (b + 1) << ov->shift;

		while (run_end < end && ov_map_get_in(map, run_end >> ov->shift) == st)
			run_end += ov->bs;
		run_end = min64(run_end, end);

		int ret = read_run(ov, st, p, (size_t)(run_end - off), off);

		if (ret)
			return ret;
		p += run_end - off;
		off = run_end;
	}
	return 0;
}

int ov_read_locked(struct overlay *ov, void *buf, size_t len, uint64_t off)
{
	return read_with_map(ov, ov->map, buf, len, off);
}

static size_t clamp(struct overlay *ov, size_t len, uint64_t off)
{
	uint64_t size = atomic_load_explicit(&ov->size, memory_order_relaxed);

	return off >= size ? 0 : (size_t)min64(min64(len, size - off), SSIZE_MAX);
}

/* The hot path takes no lock (see geo_seq in internal.h): a read racing a resize
 * is retried, and if resizes keep coming it waits on io_lock like everyone else. */
ssize_t overlay_read(struct overlay *ov, void *buf, size_t len, uint64_t off)
{
	size_t n;
	int ret;

	for (int tries = 0; tries < 3; tries++) {
		unsigned long s = atomic_load_explicit(&ov->geo_seq, memory_order_acquire);

		if (s & 1)
			break;
		/* Map before size: a stale size is caught by the bound check. */
		_Atomic uint64_t *map = atomic_load_explicit(&ov->map, memory_order_acquire);

		n = clamp(ov, len, off);
		ret = read_with_map(ov, map, buf, n, off);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&ov->geo_seq, memory_order_relaxed) == s)
			return ret ? ret : (ssize_t)n;
	}
	pthread_rwlock_rdlock(&ov->io_lock);
	n = clamp(ov, len, off);
	ret = ov_read_locked(ov, buf, n, off);
	pthread_rwlock_unlock(&ov->io_lock);
	return ret ? ret : (ssize_t)n;
}

/* Current contents of a whole block, whatever its state (bytes past the logical
 * size included: they are zero by the resize invariant). */
int ov_block_get(struct overlay *ov, uint64_t b, uint8_t *buf)
{
	return read_run(ov, ov_map_get(ov, b), buf, ov->bs, b << ov->shift);
}

/* Write a whole block to the diff and make it DATA.  Stripe lock held. */
int ov_block_put(struct overlay *ov, uint64_t b, const uint8_t *buf)
{
	int ret = ov_pwrite(ov->diff_fd, ov->diff_direct, buf, ov->bs, ov_block_off(ov, b));

	if (ret)
		return ret;
	ov_map_set(ov, b, OVERLAY_DATA);
	ov_mark_changed(ov, b);
	return 0;
}

/* Partial write into a DATA block on an O_DIRECT diff: read-modify-write of the
 * aligned sectors around the piece, under the stripe lock. */
static int rmw_sectors(struct overlay *ov, uint64_t b, const uint8_t *src, uint32_t o,
		       uint32_t l)
{
	uint32_t a0 = o / OV_ALIGN * OV_ALIGN;
	uint32_t a1 = (uint32_t)ov_round_up(o + l, OV_ALIGN);
	uint8_t *tmp = ov_alloc(a1 - a0);
	uint64_t at = ov_block_off(ov, b) + a0;
	int ret;

	if (!tmp)
		return -ENOMEM;
	ret = ov_pread(ov->diff_fd, true, tmp, a1 - a0, at);
	if (!ret) {
		memcpy(tmp + (o - a0), src, l);
		ret = ov_pwrite(ov->diff_fd, true, tmp, a1 - a0, at);
	}
	free(tmp);
	return ret;
}

static int fill_and_put(struct overlay *ov, uint64_t b, const uint8_t *src, uint32_t o,
			uint32_t l)
{
	uint8_t *blk = ov_alloc(ov->bs);
	int ret;

	if (!blk)
		return -ENOMEM;
	ret = ov_block_get(ov, b, blk);
	if (!ret) {
		memcpy(blk + o, src, l);
		ret = ov_block_put(ov, b, blk);
	}
	free(blk);
	return ret;
}

static int write_piece_locked(struct overlay *ov, uint64_t b, const uint8_t *src,
			      uint32_t o, uint32_t l)
{
	unsigned st = ov_map_get(ov, b);
	int ret;

	if (o == 0 && l == ov->bs)
		return ov_block_put(ov, b, src);
	if (st != OVERLAY_DATA)
		return fill_and_put(ov, b, src, o, l);
	if (ov->diff_direct && (o % OV_ALIGN || l % OV_ALIGN))
		ret = rmw_sectors(ov, b, src, o, l);
	else
		ret = ov_pwrite(ov->diff_fd, ov->diff_direct, src, l, ov_block_off(ov, b) + o);
	if (!ret)
		ov_mark_changed(ov, b);
	return ret;
}

static int write_piece(struct overlay *ov, uint64_t b, const uint8_t *src, uint32_t o,
		       uint32_t l)
{
	int ret;

	if (!ov->diff_direct && ov_map_get(ov, b) == OVERLAY_DATA) {
		ret = ov_pwrite(ov->diff_fd, false, src, l, ov_block_off(ov, b) + o);
		if (!ret)
			ov_mark_changed(ov, b);
		return ret;
	}
	pthread_mutex_lock(ov_stripe(ov, b));
	ret = write_piece_locked(ov, b, src, o, l);
	pthread_mutex_unlock(ov_stripe(ov, b));
	return ret;
}

/* Stripe locks of blocks [b, b+n), always taken in ascending stripe order so two
 * multi-block writers cannot deadlock.  The stripes of consecutive blocks are
 * consecutive modulo OV_STRIPES: [first, end) or, wrapped, [0, end) + [first, S). */
static void lock_run(struct overlay *ov, uint64_t b, uint64_t n, bool lock)
{
	uint64_t first = b % OV_STRIPES, cnt = n < OV_STRIPES ? n : OV_STRIPES;
	uint64_t end = first + cnt, lo_end = end > OV_STRIPES ? end - OV_STRIPES : 0;

	for (uint64_t s = 0; s < lo_end; s++)
		lock ? pthread_mutex_lock(&ov->stripe[s]) : pthread_mutex_unlock(&ov->stripe[s]);
	for (uint64_t s = first; s < end && s < OV_STRIPES; s++)
		lock ? pthread_mutex_lock(&ov->stripe[s]) : pthread_mutex_unlock(&ov->stripe[s]);
}

static bool run_is_data(struct overlay *ov, uint64_t b, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		if (ov_map_get(ov, b + i) != OVERLAY_DATA)
			return false;
	return true;
}

/* n whole blocks from b in one pwrite: the sequential fast path.  Blocks not yet
 * DATA are locked so no partial writer can be filling them from the base while
 * our bytes land (its fill would overwrite ours with base bytes). */
static int write_whole_run(struct overlay *ov, uint64_t b, uint64_t n, const uint8_t *src)
{
	bool locked = ov->diff_direct || !run_is_data(ov, b, n);
	int ret;

	if (locked)
		lock_run(ov, b, n, true);
	ret = ov_pwrite(ov->diff_fd, ov->diff_direct, src, n << ov->shift, ov_block_off(ov, b));
	if (!ret) {
		if (locked)
			ov_map_set_data_run(ov, b, n);
		ov_mark_changed_run(ov, b, n);
	}
	if (locked)
		lock_run(ov, b, n, false);
	return ret;
}

/* Bytes per pwrite on the whole-block path.  Buffered: 256 KiB.  On the
 * development VM's ext4 (kernel 6.18) buffered writes into the holes of a new
 * sparse file intermittently run 10-20x slower (time spent in
 * ext4_block_write_begin), with or without the overlay (the benchmark's control
 * row); 64-256 KiB writes hit that mode less often than 1 MiB ones in our runs.
 * O_DIRECT has no page cache and wants few large I/Os. */
#define WRITE_RUN_BUFFERED (256u << 10)
#define WRITE_RUN_DIRECT (1u << 20)

int ov_write_locked(struct overlay *ov, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		uint64_t b = off >> ov->shift;
		uint32_t o = (uint32_t)(off & (ov->bs - 1));
		uint64_t l = min64(len, ov->bs - o);
		int ret;

		if (o == 0 && len >= ov->bs) {
			uint64_t run = ov->diff_direct ? WRITE_RUN_DIRECT : WRITE_RUN_BUFFERED;
			uint64_t n = min64(len, run > ov->bs ? run : ov->bs) >> ov->shift;

			l = n << ov->shift;
			ret = write_whole_run(ov, b, n, p);
		} else {
			ret = write_piece(ov, b, p, o, (uint32_t)l);
		}
		if (ret)
			return ret;
		p += l;
		off += l;
		len -= l;
	}
	return 0;
}

ssize_t overlay_write(struct overlay *ov, const void *buf, size_t len, uint64_t off)
{
	int ret;

	if (ov->rdonly)
		return -EROFS;
	if (len > SSIZE_MAX || off + len < off || off + len > (1ull << 60))
		return -EFBIG;
	for (;;) {
		pthread_rwlock_rdlock(&ov->io_lock);
		if (off + len <= ov->size)
			break;
		/* Growing needs the exclusive lock; never upgrade while holding it. */
		pthread_rwlock_unlock(&ov->io_lock);
		ret = ov_grow(ov, off + len);
		if (ret)
			return ret;
	}
	ret = ov_write_locked(ov, buf, len, off);
	pthread_rwlock_unlock(&ov->io_lock);
	return ret ? ret : (ssize_t)len;
}

static int discard_block(struct overlay *ov, uint64_t b)
{
	pthread_mutex_lock(ov_stripe(ov, b));
	unsigned st = ov_map_get(ov, b);

	if (st != OVERLAY_ZERO) {
		ov_map_set(ov, b, OVERLAY_ZERO);
		if (st == OVERLAY_DATA)
			ov_punch(ov->diff_fd, ov_block_off(ov, b), ov->bs);	/* space only */
		ov_mark_changed(ov, b);
	}
	pthread_mutex_unlock(ov_stripe(ov, b));
	return 0;
}

static int discard_locked(struct overlay *ov, uint64_t off, uint64_t len)
{
	while (len) {
		uint64_t b = off >> ov->shift;
		uint32_t o = (uint32_t)(off & (ov->bs - 1));
		uint32_t l = (uint32_t)min64(len, ov->bs - o);
		bool whole = l == ov->bs || (o == 0 && off + l == ov->size);
		int ret = 0;

		if (whole)
			ret = discard_block(ov, b);
		else if (ov_map_get(ov, b) != OVERLAY_ZERO)
			ret = write_piece(ov, b, ov->zero_block, o, l);
		if (ret)
			return ret;
		off += l;
		len -= l;
	}
	return 0;
}

int overlay_discard(struct overlay *ov, uint64_t off, uint64_t len)
{
	int ret = 0;

	if (ov->rdonly)
		return -EROFS;
	pthread_rwlock_rdlock(&ov->io_lock);
	if (off < ov->size)
		ret = discard_locked(ov, off, min64(len, ov->size - off));
	pthread_rwlock_unlock(&ov->io_lock);
	return ret;
}

/* Before the size drops to a non-block-aligned value: make the bytes of the
 * boundary block past the new size zero, so they can never reappear after a later
 * grow.  Caller holds io_lock exclusively. */
int ov_seal_tail(struct overlay *ov, uint64_t size)
{
	uint64_t b = size >> ov->shift;
	uint32_t o = (uint32_t)(size & (ov->bs - 1));
	unsigned st;

	if (!o || b >= ov->nblocks)
		return 0;
	st = ov_map_get(ov, b);
	if (st == OVERLAY_ZERO || (st == OVERLAY_BASE && ov->base_size <= size))
		return 0;

	uint8_t *blk = ov_alloc(ov->bs);
	int ret;

	if (!blk)
		return -ENOMEM;
	ret = ov_block_get(ov, b, blk);
	if (!ret) {
		memset(blk + o, 0, ov->bs - o);
		ret = ov_block_put(ov, b, blk);
	}
	free(blk);
	return ret;
}
