/* logiter.c - changed extents in the order their bytes lie in the log.
 *
 * The map goes from guest block to slot; nothing goes back.  Rather than keep a
 * reverse map for the whole life of the overlay (4-8 more bytes per written
 * block), the iterator scans the map once per window of W slots and sorts the
 * (slot, block) pairs that fall into the window: memory W * 16 bytes, scans
 * log_end / W.  W = max(64 Ki, log_end / 16) at begin, so a merge costs at most 17
 * scans of the map (about a millisecond per 100k leaves each) and a buffer of a
 * 16th of the log.  After the last window come the ZERO extents, in guest order
 * (they have no bytes in the log).
 *
 * A window is scanned under io_lock shared, like next_extent, and only when the
 * previous one is used up, so concurrent writes are fine (overlay.h says what an
 * iteration then reports).  Only the slots below log_end at begin are scanned: a
 * merge that went on to the slots appended since chased a writer faster than
 * itself (issue 13), for blocks the daemon's converge has mirrored anyway.
 */
#include <stdlib.h>

#include "internal.h"

#define WINDOW_MIN (64u << 10)

struct pair {
	uint32_t dslot;		/* slot - window start */
	uint32_t pad;
	uint64_t b;
};

struct overlay_log_iter {
	struct overlay *ov;
	uint64_t lo, w;		/* next window starts at slot lo; window width */
	uint64_t end;		/* log_end at begin: slots past it are not scanned */
	struct pair *p;
	uint64_t n, i;		/* pairs in the buffer, next to emit */
	uint64_t zero_cursor;	/* guest offset once the log is done */
	bool zeros;
};

int overlay_log_iter_begin(struct overlay *ov, struct overlay_log_iter **out)
{
	struct overlay_log_iter *it = calloc(1, sizeof(*it));
	uint64_t end = atomic_load(&ov->log_end);

	if (!it)
		return -ENOMEM;
	it->ov = ov;
	it->end = end;
	it->w = end / 16 > WINDOW_MIN ? end / 16 : WINDOW_MIN;
	it->p = malloc(it->w * sizeof(*it->p));
	if (!it->p) {
		free(it);
		return -ENOMEM;
	}
	*out = it;
	return 0;
}

void overlay_log_iter_end(struct overlay_log_iter *it)
{
	if (!it)
		return;
	free(it->p);
	free(it);
}

static int cmp_pair(const void *a, const void *b)
{
	uint32_t x = ((const struct pair *)a)->dslot, y = ((const struct pair *)b)->dslot;

	return x < y ? -1 : x > y;
}

/* Collect the DATA blocks whose slots lie in [lo, lo + w).  Slots are unique, so
 * at most w pairs. */
static void scan_window(struct overlay_log_iter *it)
{
	struct overlay *ov = it->ov;

	it->n = it->i = 0;
	pthread_rwlock_rdlock(&ov->io_lock);
	for (struct ov_leaf *l = ov_leaf_next(ov->head); l; l = ov_leaf_next(l)) {
		for (unsigned k = 0; k < OV_LEAF_BLOCKS; k++) {
			uint32_t e = atomic_load_explicit(&l->e[k], memory_order_acquire);
			uint64_t b = (l->key << OV_LEAF_SHIFT) + k;

			if (e < OV_E_SLOT0 || ov_e_slot(e) < it->lo || ov_e_slot(e) >= it->end ||
			    ov_e_slot(e) - it->lo >= it->w || b >= ov->nblocks)
				continue;
			if (it->n == it->w)
				break;	/* only if a slot were mapped twice: never (I2) */
			it->p[it->n++] = (struct pair){ (uint32_t)(ov_e_slot(e) - it->lo), 0, b };
		}
	}
	pthread_rwlock_unlock(&ov->io_lock);
	qsort(it->p, it->n, sizeof(*it->p), cmp_pair);
	it->lo += it->w;
}

int overlay_log_iter_next(struct overlay_log_iter *it, struct overlay_extent *ext)
{
	struct overlay *ov = it->ov;

	while (!it->zeros) {
		if (it->i < it->n) {
			struct pair *s = &it->p[it->i];
			uint64_t k = 1, size = atomic_load(&ov->size);

			while (it->i + k < it->n && s[k].dslot == s->dslot + k && s[k].b == s->b + k)
				k++;
			it->i += k;
			ext->off = s->b << ov->shift;
			if (ext->off >= size)
				continue;	/* cut off by a shrink since the scan */
			ext->len = ((s->b + k) << ov->shift) < size ?
				k << ov->shift : size - ext->off;
			ext->state = OVERLAY_DATA;
			return 1;
		}
		if (it->lo >= it->end)
			it->zeros = true;
		else
			scan_window(it);
	}
	while (overlay_next_extent(ov, &it->zero_cursor, ext) == 1)
		if (ext->state == OVERLAY_ZERO)
			return 1;
	return 0;
}
