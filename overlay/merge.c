/* merge.c - applying the differencing file to a target, and iterating changes.
 *
 * Converging merge for live migration.  A session owns one dirty bitmap (1 bit per
 * block).  begin() sets the bit of every changed block; every write or discard sets
 * its block's bit after its change has landed (ov_mark_changed).  A pass takes
 * each word of the bitmap with an atomic exchange (clearing it) BEFORE reading the
 * blocks it names.  So for a write that races with a pass either
 *   - its bit was set before our exchange: its data landed before we read it, and
 *     we copy the new bytes; or
 *   - its bit is set after our exchange: the block is dirty again and the next
 *     pass copies it.
 * Either way no write is lost, and the final pass (with I/O paused) leaves the
 * target equal to the overlay.  Blocks are read through the overlay itself, so a
 * block's state changing mid-pass is harmless.
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
#define YIELD_WORDS 1024	/* bitmap words (64 blocks each) between io_lock yields */

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	return a >= 0 && !fstat(a, &sa) && !fstat(b, &sb) && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
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
	m->nbits = ov->nblocks;
	m->dirty = calloc((m->nbits + 63) / 64 + 1, 8);
	if (!ret && !m->dirty)
		ret = -ENOMEM;
	if (!ret && ov->merge)
		ret = -EBUSY;
	for (uint64_t b = 0; !ret && b < ov->nblocks; b++)
		if (ov_map_get(ov, b) != OVERLAY_BASE)
			m->dirty[b / 64] |= 1ull << (b % 64);
	if (!ret)
		ov->merge = m;
	pthread_rwlock_unlock(&ov->io_lock);
	if (ret) {
		free(m->dirty);
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
	free(m->dirty);
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

static void redirty(struct overlay_merge *m, const struct run *r)
{
	for (uint64_t b = r->b; b < r->b + r->n; b++)
		atomic_fetch_or(&m->dirty[b / 64], 1ull << (b % 64));
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

/* Walk the words of the bitmap; copy maximal runs of equal state.  Called with
 * io_lock shared; drops and retakes it between words (never with a run pending),
 * so geometry may change there and the loop bound is re-read. */
static int64_t pass_locked(struct overlay_merge *m, uint8_t *buf)
{
	struct overlay *ov = m->ov;
	struct run r = { 0, 0, 0 };
	int64_t done = 0;
	int ret = 0;

	for (uint64_t i = 0; i < (m->nbits + 63) / 64 && !ret; i++) {
		/* Let a waiting resize in now and then: the rwlock prefers writers, so
		 * one long pass would otherwise stall every guest write behind it. */
		if (i % YIELD_WORDS == YIELD_WORDS - 1) {
			if (r.n && (ret = copy_run(m, &r, buf))) {
				redirty(m, &r);
				return ret;
			}
			done += (int64_t)r.n;
			r.n = 0;
			pthread_rwlock_unlock(&ov->io_lock);
			pthread_rwlock_rdlock(&ov->io_lock);
			if (i >= (m->nbits + 63) / 64)
				break;	/* shrunk meanwhile */
		}
		uint64_t w = atomic_exchange(&m->dirty[i], 0);

		while (w && !ret) {
			uint64_t b = i * 64 + (uint64_t)__builtin_ctzll(w);
			unsigned st = ov_map_get(ov, b);

			w &= w - 1;
			if (st == OVERLAY_BASE)
				continue;	/* nothing of ours to apply */
			if (r.n && b == r.b + r.n && st == r.st && ((r.n + 1) << ov->shift) <= RUN_MAX) {
				r.n++;
				continue;
			}
			if (r.n && (ret = copy_run(m, &r, buf))) {
				atomic_fetch_or(&m->dirty[b / 64], 1ull << (b % 64));
				break;
			}
			done += (int64_t)r.n;
			r = (struct run){ b, 1, st };
		}
		if (ret) {
			redirty(m, &r);
			while (w) {
				uint64_t b = i * 64 + (uint64_t)__builtin_ctzll(w);

				atomic_fetch_or(&m->dirty[b / 64], 1ull << (b % 64));
				w &= w - 1;
			}
			return ret;
		}
	}
	if (r.n && (ret = copy_run(m, &r, buf))) {
		redirty(m, &r);
		return ret;
	}
	return done + (int64_t)r.n;
}

static uint64_t count_dirty(struct overlay_merge *m)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < (m->nbits + 63) / 64; i++)
		n += (uint64_t)__builtin_popcountll(atomic_load(&m->dirty[i]));
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
		*remaining = count_dirty(m);
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

int overlay_next_extent(struct overlay *ov, uint64_t *cursor, struct overlay_extent *ext)
{
	int found = 0;

	pthread_rwlock_rdlock(&ov->io_lock);
	uint64_t b = *cursor >> ov->shift;

	while (b < ov->nblocks) {
		if (b % 32 == 0 && !atomic_load(&ov->map[b / 32])) {
			b += 32;	/* 32 base blocks at once */
			continue;
		}
		unsigned st = ov_map_get(ov, b);
		uint64_t e = b + 1;

		if (st == OVERLAY_BASE) {
			b++;
			continue;
		}
		while (e < ov->nblocks && ov_map_get(ov, e) == st)
			e++;
		ext->off = b << ov->shift;
		ext->len = ((e << ov->shift) < ov->size ? (e << ov->shift) : ov->size) - ext->off;
		ext->state = st;
		*cursor = e << ov->shift;
		found = 1;
		break;
	}
	if (!found)
		*cursor = ov->size;
	pthread_rwlock_unlock(&ov->io_lock);
	return found;
}
