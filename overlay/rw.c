/* rw.c - merged reads, writes and discards.
 *
 * Read: walk the range in runs and issue one pread per run: base runs from the
 * base (bytes past the base's size read zero), data runs from the log where
 * consecutive blocks sit in consecutive slots (a sequential write made them so),
 * zero runs are memset.  No lock at all: a read racing a write may see the old or
 * the new block, as with a disk.  What a log adds: the slot a reader looked up may
 * be freed (discard + commit) and handed to another block before the reader's
 * pread lands.  Slots only become reusable after reuse_seq moved (alloc.c), so the
 * reader samples it before and after and retries; after three tries it holds
 * flush_lock, which no slot is freed without.
 *
 * Write, per block piece, under the block's stripe lock (so its slot cannot be
 * freed and reused while the bytes land):
 *   - block already DATA: pwrite in its slot (in place: rewriting a block never
 *     grows the log).
 *   - otherwise a piece is completed to a whole block from the block's current
 *     contents (base or zeros), a slot is allocated (alloc.c: append, or the lowest
 *     free one) and the block written there.  Only then does the entry become DATA
 *     (I4), so a reader that sees DATA always finds the data.
 *   - afterwards ov_mark_changed() dirties the block for a running merge.
 * Consecutive whole blocks go out as few pwrites as possible (up to 256 KiB, 1 MiB
 * on O_DIRECT) under the stripe locks of all of them, taken in ascending order:
 * blocks not yet DATA get consecutive slots, so a sequential guest write stays
 * sequential in the file.
 *
 * Discard: whole blocks become ZERO under the stripe lock; a DATA block's slot is
 * punched and waits on the pending list for the next commit (I2); partial pieces
 * are written as zeros (skipped if already ZERO).
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

/* One run of equal kind: e is the first block's entry. */
static int read_run(struct overlay *ov, uint32_t e, uint8_t *buf, size_t len, uint64_t off)
{
	switch (ov_e_state(e)) {
	case OVERLAY_BASE:
		return read_base(ov, buf, len, off);
	case OVERLAY_DATA:
		return ov_pread(ov->diff_fd, ov->diff_direct, buf, len,
				ov_slot_off(ov, ov_e_slot(e)) + (off & (ov->bs - 1)));
	default:
		memset(buf, 0, len);
		return 0;
	}
}

/* Does block entry `next` continue a run that started with entry e, k blocks ago? */
static bool continues(uint32_t e, uint32_t next, uint64_t k)
{
	if (e < OV_E_SLOT0)
		return next == e;
	return next >= OV_E_SLOT0 && (uint64_t)next == e + k;
}

/* Entry of block b, reusing the leaf of the previous lookup when it covers b. */
static uint32_t entry_at(struct overlay *ov, uint64_t b, struct ov_leaf **cache,
			 uint64_t *ckey)
{
	uint64_t key = b >> OV_LEAF_SHIFT;

	if (*ckey != key) {
		*cache = ov_leaf_find(ov, key);
		*ckey = key;
	}
	return *cache ? atomic_load_explicit(&(*cache)->e[b % OV_LEAF_BLOCKS],
					     memory_order_acquire) : OV_E_BASE;
}

static int read_range(struct overlay *ov, uint8_t *p, size_t len, uint64_t off)
{
	uint64_t end = off + len, ckey = UINT64_MAX;
	struct ov_leaf *cache = NULL;

	while (off < end) {
		uint64_t b = off >> ov->shift, k = 1;
		uint32_t e = entry_at(ov, b, &cache, &ckey);
		uint64_t run_end = (b + 1) << ov->shift;

		while (run_end < end && continues(e, entry_at(ov, b + k, &cache, &ckey), k)) {
			run_end += ov->bs;
			k++;
		}
		run_end = min64(run_end, end);

		int ret = read_run(ov, e, p, (size_t)(run_end - off), off);

		if (ret)
			return ret;
		p += run_end - off;
		off = run_end;
	}
	return 0;
}

/* Read with the slot-reuse check (see the top of the file). */
static int read_checked(struct overlay *ov, void *buf, size_t len, uint64_t off)
{
	int ret;

	for (int tries = 0; tries < 3; tries++) {
		uint64_t s = atomic_load_explicit(&ov->reuse_seq, memory_order_acquire);

		ret = read_range(ov, buf, len, off);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&ov->reuse_seq, memory_order_relaxed) == s)
			return ret;
	}
	pthread_mutex_lock(&ov->flush_lock);
	ret = read_range(ov, buf, len, off);
	pthread_mutex_unlock(&ov->flush_lock);
	return ret;
}

int ov_read_locked(struct overlay *ov, void *buf, size_t len, uint64_t off)
{
	return read_checked(ov, buf, len, off);
}

static size_t clamp(struct overlay *ov, size_t len, uint64_t off)
{
	uint64_t size = atomic_load_explicit(&ov->size, memory_order_acquire);

	return off >= size ? 0 : (size_t)min64(min64(len, size - off), SSIZE_MAX);
}

/* The hot path takes no lock: leaves are never freed while open (leaf.c), and a
 * racing resize only changes which blocks count, never what memory is valid. */
ssize_t overlay_read(struct overlay *ov, void *buf, size_t len, uint64_t off)
{
	size_t n = clamp(ov, len, off);
	int ret = read_checked(ov, buf, n, off);

	return ret ? ret : (ssize_t)n;
}

/* Current contents of a whole block, whatever its state (bytes past the logical
 * size included: they are zero by I5). */
int ov_block_get(struct overlay *ov, uint64_t b, uint8_t *buf)
{
	return read_run(ov, ov_entry(ov, b), buf, ov->bs, b << ov->shift);
}

/* Bytes of a block that is not DATA yet: into a new slot, then the entry (I4). */
static int put_new(struct overlay *ov, struct ov_leaf *l, uint64_t b, const uint8_t *buf)
{
	uint64_t slot;
	int64_t got = ov_slots_alloc(ov, 1, &slot);
	int ret;

	if (got < 0)
		return (int)got;
	ret = ov_pwrite(ov->diff_fd, ov->diff_direct, buf, ov->bs, ov_slot_off(ov, slot));
	if (ret) {
		ov_slots_unalloc(ov, slot, 1);
		return ret;
	}
	ov_entry_set(ov, l, b, ov_e_data(slot));
	return 0;
}

/* Write a whole block to the diff and make it DATA.  Stripe lock held. */
int ov_block_put(struct overlay *ov, uint64_t b, const uint8_t *buf)
{
	struct ov_leaf *l;
	uint32_t e;
	int ret = ov_leaf_get(ov, b >> OV_LEAF_SHIFT, &l);

	if (ret)
		return ret;
	e = atomic_load(&l->e[b % OV_LEAF_BLOCKS]);
	if (e >= OV_E_SLOT0)
		ret = ov_pwrite(ov->diff_fd, ov->diff_direct, buf, ov->bs,
				ov_slot_off(ov, ov_e_slot(e)));
	else
		ret = put_new(ov, l, b, buf);
	if (!ret)
		ov_mark_changed(ov, l, b);
	return ret;
}

/* Partial write into a DATA block on an O_DIRECT diff: read-modify-write of the
 * aligned sectors around the piece, under the stripe lock. */
static int rmw_sectors(struct overlay *ov, uint64_t at0, const uint8_t *src, uint32_t o,
		       uint32_t l)
{
	uint32_t a0 = o / OV_ALIGN * OV_ALIGN;
	uint32_t a1 = (uint32_t)ov_round_up(o + l, OV_ALIGN);
	uint8_t *tmp = ov_alloc(a1 - a0);
	uint64_t at = at0 + a0;
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
	uint32_t e = ov_entry(ov, b);
	uint64_t at;
	int ret;

	if (o == 0 && l == ov->bs)
		return ov_block_put(ov, b, src);
	if (e < OV_E_SLOT0)
		return fill_and_put(ov, b, src, o, l);
	at = ov_slot_off(ov, ov_e_slot(e));
	if (ov->diff_direct && (o % OV_ALIGN || l % OV_ALIGN))
		ret = rmw_sectors(ov, at, src, o, l);
	else
		ret = ov_pwrite(ov->diff_fd, ov->diff_direct, src, l, at + o);
	if (!ret)
		ov_mark_changed(ov, ov_leaf_find(ov, b >> OV_LEAF_SHIFT), b);
	return ret;
}

static int write_piece(struct overlay *ov, uint64_t b, const uint8_t *src, uint32_t o,
		       uint32_t l)
{
	int ret;

	pthread_mutex_lock(ov_stripe(ov, b));
	ret = write_piece_locked(ov, b, src, o, l);
	pthread_mutex_unlock(ov_stripe(ov, b));
	return ret;
}

/* Stripe locks of blocks [b, b+n), always taken in ascending stripe order so two
 * multi-block writers cannot deadlock.  The stripes of consecutive block groups are
 * consecutive modulo OV_STRIPES: [first, end) or, wrapped, [0, end) + [first, S). */
static void lock_run(struct overlay *ov, uint64_t b, uint64_t n, bool lock)
{
	uint64_t groups = ((b + n - 1) >> OV_STRIPE_SHIFT) - (b >> OV_STRIPE_SHIFT) + 1;
	uint64_t first = ov_stripe_index(b), cnt = groups < OV_STRIPES ? groups : OV_STRIPES;
	uint64_t end = first + cnt, lo_end = end > OV_STRIPES ? end - OV_STRIPES : 0;

	for (uint64_t s = 0; s < lo_end; s++)
		lock ? pthread_mutex_lock(&ov->stripe[s]) : pthread_mutex_unlock(&ov->stripe[s]);
	for (uint64_t s = first; s < end && s < OV_STRIPES; s++)
		lock ? pthread_mutex_lock(&ov->stripe[s]) : pthread_mutex_unlock(&ov->stripe[s]);
}

/* Blocks [b, b+n) that are already DATA in consecutive slots: rewritten in place
 * with one pwrite.  Returns how many blocks it wrote (0 if b is not DATA). */
static int64_t rewrite_run(struct overlay *ov, uint64_t b, uint64_t n, const uint8_t *src)
{
	uint32_t e = ov_entry(ov, b);
	uint64_t k = 1;
	int ret;

	if (e < OV_E_SLOT0)
		return 0;
	while (k < n && continues(e, ov_entry(ov, b + k), k))
		k++;
	ret = ov_pwrite(ov->diff_fd, ov->diff_direct, src, k << ov->shift,
			ov_slot_off(ov, ov_e_slot(e)));
	return ret ? ret : (int64_t)k;
}

/* Blocks [b, b+n) not yet DATA (up to the first that is): consecutive new slots,
 * one pwrite, then the entries.  Returns blocks written. */
static int64_t append_run(struct overlay *ov, uint64_t b, uint64_t n, const uint8_t *src)
{
	uint64_t k = 1, slot;
	int64_t got;
	int ret;

	while (k < n && ov_entry(ov, b + k) < OV_E_SLOT0)
		k++;
	for (uint64_t key = b >> OV_LEAF_SHIFT; key <= (b + k - 1) >> OV_LEAF_SHIFT; key++) {
		struct ov_leaf *l;

		ret = ov_leaf_get(ov, key, &l);
		if (ret)
			return ret;
	}
	got = ov_slots_alloc(ov, k, &slot);
	if (got < 0)
		return got;
	ret = ov_pwrite(ov->diff_fd, ov->diff_direct, src, (uint64_t)got << ov->shift,
			ov_slot_off(ov, slot));
	if (ret) {
		ov_slots_unalloc(ov, slot, (uint64_t)got);
		return ret;
	}
	for (int64_t i = 0; i < got; i++)
		ov_entry_set(ov, ov_leaf_find(ov, (b + i) >> OV_LEAF_SHIFT), b + i,
			     ov_e_data(slot + i));
	return got;
}

/* n whole blocks from b: the sequential fast path. */
static int write_whole_run(struct overlay *ov, uint64_t b, uint64_t n, const uint8_t *src)
{
	int64_t done = 0;

	lock_run(ov, b, n, true);
	for (uint64_t i = 0; i < n && done >= 0; i += (uint64_t)done) {
		done = rewrite_run(ov, b + i, n - i, src + (i << ov->shift));
		if (!done)
			done = append_run(ov, b + i, n - i, src + (i << ov->shift));
		for (int64_t k = 0; k < done; k++)
			ov_mark_changed(ov, ov_leaf_find(ov, (b + i + k) >> OV_LEAF_SHIFT),
					b + i + k);
	}
	lock_run(ov, b, n, false);
	return done < 0 ? (int)done : 0;
}

/* Bytes per pwrite on the whole-block path.  Buffered: 256 KiB.  On the
 * development VM's ext4 (kernel 6.18) buffered writes into the holes of a new
 * sparse file intermittently run 10-20x slower (time spent in
 * ext4_block_write_begin), with or without the overlay (the benchmark's control
 * row); 64-256 KiB writes hit that mode less often than 1 MiB ones in our runs.
 * O_DIRECT has no page cache and wants few large I/Os. */
#define WRITE_RUN_BUFFERED (256u << 10)
#define WRITE_RUN_DIRECT (1u << 20)

static int write_locked(struct overlay *ov, const void *buf, size_t len, uint64_t off)
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
	if (len > SSIZE_MAX || off + len < off || off + len > OV_MAX_SIZE)
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
	ret = write_locked(ov, buf, len, off);
	pthread_rwlock_unlock(&ov->io_lock);
	return ret ? ret : (ssize_t)len;
}

/* A slot whose pending-free record cannot be kept (no memory) stays garbage for
 * good: space only, nothing a reader sees. */
static int discard_block(struct overlay *ov, uint64_t b)
{
	struct ov_leaf *l;
	uint32_t e;
	int ret = 0;

	pthread_mutex_lock(ov_stripe(ov, b));
	e = ov_entry(ov, b);
	if (e != OV_E_ZERO)
		ret = ov_leaf_get(ov, b >> OV_LEAF_SHIFT, &l);
	if (e != OV_E_ZERO && !ret) {
		ov_entry_set(ov, l, b, OV_E_ZERO);
		if (e >= OV_E_SLOT0) {
			ov_punch(ov->diff_fd, ov_slot_off(ov, ov_e_slot(e)), ov->bs);
			ov_slot_release(ov, ov_e_slot(e), false);	/* after the entry: I2 */
		}
		ov_mark_changed(ov, l, b);
	}
	pthread_mutex_unlock(ov_stripe(ov, b));
	return ret;
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
		else if (ov_entry(ov, b) != OV_E_ZERO)
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
 * grow (I5).  Caller holds io_lock exclusively. */
int ov_seal_tail(struct overlay *ov, uint64_t size)
{
	uint64_t b = size >> ov->shift;
	uint32_t o = (uint32_t)(size & (ov->bs - 1));
	unsigned st;

	if (!o || b >= ov->nblocks)
		return 0;
	st = ov_state(ov, b);
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
