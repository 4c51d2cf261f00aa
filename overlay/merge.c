/* merge.c - applying the differencing file to a target, and iterating changes in
 * guest order.
 *
 * Converging merge for live migration.  Each leaf carries a 16-bit dirty mask for
 * the one merge session there can be: begin() sets the bit of every changed block;
 * every write or discard sets its block's bit after its change has landed
 * (ov_mark_changed).  A pass walks the leaves in key order and takes each mask with
 * an atomic exchange (clearing it) BEFORE reading the blocks it names.  So for a
 * write that races with a pass either
 *   - its bit was set before our exchange: its data landed before we read it, and
 *     we copy the new bytes; or
 *   - its bit is set after our exchange: the block is dirty again and the next
 *     pass copies it.
 * Either way no write is lost, and the final pass (with I/O paused) leaves the
 * target equal to the overlay.  Blocks are read through the overlay itself, so a
 * block's state changing mid-pass is harmless.  The masks live in the leaves, so a
 * session costs no memory of its own (version 1 held a bit per block of the
 * virtual size).
 *
 * The target may be the base (cancel).  Before the first byte of the base
 * changes, the header records BASE_DIRTY so a later open does not refuse the base
 * for no longer matching its fingerprint.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define RUN_MAX (1u << 20)	/* bytes copied per I/O */
#define YIELD_LEAVES 4096	/* leaves between io_lock yields */

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	return a >= 0 && !fstat(a, &sa) && !fstat(b, &sb) && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

static uint16_t changed_mask(struct ov_leaf *l)
{
	uint16_t m = 0;

	for (unsigned i = 0; i < OV_LEAF_BLOCKS; i++)
		if (atomic_load(&l->e[i]) != OV_E_BASE)
			m |= (uint16_t)(1u << i);
	return m;
}

int overlay_merge_begin(struct overlay *ov, int target_fd, struct overlay_merge **out)
{
	struct overlay_merge *m = calloc(1, sizeof(*m));
	int ret = 0;

	if (!m)
		return -ENOMEM;
	m->ov = ov;
	m->target_fd = target_fd;
	m->target_direct = ov_fd_direct(target_fd);
	m->target_is_base = same_file(ov->base_fd, target_fd);
	if (m->target_is_base && ov->rdonly)
		ret = -EROFS;
	pthread_rwlock_wrlock(&ov->io_lock);
	if (!ret && ov->merge)
		ret = -EBUSY;
	for (struct ov_leaf *l = ov_leaf_next(ov->head); !ret && l; l = ov_leaf_next(l))
		atomic_store(&l->merge_dirty, changed_mask(l));
	if (!ret)
		ov->merge = m;
	pthread_rwlock_unlock(&ov->io_lock);
	if (ret) {
		free(m);
		return ret;
	}
	*out = m;
	return 0;
}

void overlay_merge_end(struct overlay_merge *m)
{
	struct overlay *ov;

	if (!m)
		return;
	ov = m->ov;
	pthread_rwlock_wrlock(&ov->io_lock);
	if (ov->merge == m)
		ov->merge = NULL;
	pthread_rwlock_unlock(&ov->io_lock);
	free(m);
}

struct run {
	uint64_t b, n;		/* first block, count */
	unsigned st;
};

static int copy_run(struct overlay_merge *m, const struct run *r, uint8_t *buf)
{
	struct overlay *ov = m->ov;
	uint64_t off = r->b << ov->shift, len = r->n << ov->shift;
	uint64_t vis = off + len > ov->size ? ov->size - off : len;
	int ret;

	if (r->st == OVERLAY_ZERO)
		return ov_zero_range(m->target_fd, m->target_direct, off, len);
	/* Whole blocks (aligned for O_DIRECT); bytes past the size are zero and the
	 * target is truncated to the size at the end of the pass. */
	ret = ov_read_locked(ov, buf, vis, off);
	if (!ret && vis < len)
		memset(buf + vis, 0, len - vis);
	return ret ?: ov_pwrite(m->target_fd, m->target_direct, buf, len, off);
}

/* Put the bits of a run that could not be copied back for the next pass. */
static void redirty(struct overlay *ov, const struct run *r)
{
	for (uint64_t b = r->b; b < r->b + r->n; b++) {
		struct ov_leaf *l = ov_leaf_find(ov, b >> OV_LEAF_SHIFT);

		if (l)
			atomic_fetch_or(&l->merge_dirty, (uint16_t)(1u << (b % OV_LEAF_BLOCKS)));
	}
}

static int mark_base_dirty(struct overlay *ov)
{
	int ret = 0;

	pthread_mutex_lock(&ov->flush_lock);
	if (!(ov->meta.flags & OV_FLAG_BASE_DIRTY)) {
		ov->want_flags |= OV_FLAG_BASE_DIRTY;
		ret = ov_commit(ov, false);
	}
	pthread_mutex_unlock(&ov->flush_lock);
	return ret;
}

static int fit_target(struct overlay_merge *m)
{
	struct stat st;

	if (fstat(m->target_fd, &st))
		return -errno;
	if ((uint64_t)st.st_size != m->ov->size && ftruncate(m->target_fd, (off_t)m->ov->size))
		return -errno;
	return fdatasync(m->target_fd) ? -errno : 0;
}

/* Extend the run r with block b of state st, or copy r and start a new one. */
static int feed(struct overlay_merge *m, struct run *r, uint64_t b, unsigned st, uint8_t *buf,
		int64_t *done)
{
	int ret;

	if (r->n && b == r->b + r->n && st == r->st &&
	    ((r->n + 1) << m->ov->shift) <= RUN_MAX) {
		r->n++;
		return 0;
	}
	if (r->n && (ret = copy_run(m, r, buf))) {
		redirty(m->ov, r);
		return ret;
	}
	*done += (int64_t)r->n;
	*r = (struct run){ b, 1, st };
	return 0;
}

/* Walk the leaves in key order; copy maximal runs of equal state.  Called with
 * io_lock shared; drops and retakes it now and then (never with a run pending),
 * so a resize may happen there: leaves stay valid (leaf.c), blocks past the new
 * end read as BASE and are skipped. */
static int64_t pass_locked(struct overlay_merge *m, uint8_t *buf)
{
	struct overlay *ov = m->ov;
	struct run r = { 0, 0, 0 };
	int64_t done = 0;
	uint64_t seen = 0;
	int ret = 0;

	for (struct ov_leaf *l = ov_leaf_next(ov->head); l && !ret; l = ov_leaf_next(l)) {
		/* Let a waiting resize in now and then: the rwlock prefers writers, so
		 * one long pass would otherwise stall every guest write behind it. */
		if (++seen % YIELD_LEAVES == 0) {
			if (r.n && (ret = copy_run(m, &r, buf))) {
				redirty(ov, &r);
				return ret;
			}
			done += (int64_t)r.n;
			r.n = 0;
			pthread_rwlock_unlock(&ov->io_lock);
			pthread_rwlock_rdlock(&ov->io_lock);
		}
		unsigned w = atomic_exchange(&l->merge_dirty, 0);

		while (w && !ret) {
			unsigned i = (unsigned)__builtin_ctz(w);
			uint64_t b = (l->key << OV_LEAF_SHIFT) + i;
			unsigned st = ov_e_state(atomic_load(&l->e[i]));

			w &= w - 1;
			if (st == OVERLAY_BASE || b >= ov->nblocks)
				continue;	/* nothing of ours to apply */
			ret = feed(m, &r, b, st, buf, &done);
			if (ret) {
				atomic_fetch_or(&l->merge_dirty, (uint16_t)(w | (1u << i)));
				return ret;
			}
		}
	}
	if (r.n && (ret = copy_run(m, &r, buf))) {
		redirty(ov, &r);
		return ret;
	}
	return done + (int64_t)r.n;
}

static uint64_t count_dirty(struct overlay *ov)
{
	uint64_t n = 0;

	for (struct ov_leaf *l = ov_leaf_next(ov->head); l; l = ov_leaf_next(l))
		n += (uint64_t)__builtin_popcount(atomic_load(&l->merge_dirty));
	return n;
}

int64_t overlay_merge_pass(struct overlay_merge *m, uint64_t *remaining)
{
	struct overlay *ov = m->ov;
	uint8_t *buf = ov_alloc(RUN_MAX > ov->bs ? RUN_MAX : ov->bs);
	int64_t ret;

	if (!buf)
		return -ENOMEM;
	pthread_rwlock_rdlock(&ov->io_lock);
	ret = m->target_is_base ? mark_base_dirty(ov) : 0;
	if (!ret)
		ret = pass_locked(m, buf);
	if (ret >= 0) {
		int r = fit_target(m);

		if (r)
			ret = r;
	}
	if (remaining)
		*remaining = count_dirty(ov);
	pthread_rwlock_unlock(&ov->io_lock);
	free(buf);
	return ret;
}

int overlay_merge(struct overlay *ov, int target_fd)
{
	struct overlay_merge *m;
	uint64_t left = 0;
	int64_t ret = overlay_merge_begin(ov, target_fd, &m);

	if (ret)
		return (int)ret;
	/* Quiescent means one pass; writers still running would keep it going, so
	 * give up (-EAGAIN) rather than loop forever. */
	for (int pass = 0; pass < 100; pass++) {
		ret = overlay_merge_pass(m, &left);
		if (ret < 0 || !left)
			break;
	}
	overlay_merge_end(m);
	if (ret >= 0 && left)
		ret = -EAGAIN;
	return ret < 0 ? (int)ret : 0;
}

/* First changed block at or after b (and below the block count), or nblocks. */
static uint64_t next_changed(struct overlay *ov, uint64_t b, uint32_t *e)
{
	for (struct ov_leaf *l = ov_leaf_ge(ov, b >> OV_LEAF_SHIFT); l; l = ov_leaf_next(l)) {
		uint64_t first = l->key << OV_LEAF_SHIFT;

		if (first >= ov->nblocks)
			break;
		for (unsigned i = b > first ? (unsigned)(b - first) : 0; i < OV_LEAF_BLOCKS; i++) {
			*e = atomic_load(&l->e[i]);
			if (*e != OV_E_BASE && first + i < ov->nblocks)
				return first + i;
		}
	}
	return ov->nblocks;
}

int overlay_next_extent(struct overlay *ov, uint64_t *cursor, struct overlay_extent *ext)
{
	uint32_t e;
	int found = 0;

	pthread_rwlock_rdlock(&ov->io_lock);
	uint64_t b = next_changed(ov, *cursor >> ov->shift, &e);

	if (b < ov->nblocks) {
		unsigned st = ov_e_state(e);
		uint64_t end = b + 1;

		while (end < ov->nblocks && ov_state(ov, end) == st)
			end++;
		ext->off = b << ov->shift;
		ext->len = ((end << ov->shift) < ov->size ? (end << ov->shift) : ov->size) - ext->off;
		ext->state = st;
		*cursor = end << ov->shift;
		found = 1;
	} else {
		*cursor = ov->size;
	}
	pthread_rwlock_unlock(&ov->io_lock);
	return found;
}
