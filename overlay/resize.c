/* resize.c - grow and shrink the logical size.
 *
 * Rare, so it takes io_lock exclusively and commits before returning: the map must
 * move (relocating commit, commit.c) because the data area may now reach where the
 * committed map lives, and no block there may be written before the header points
 * elsewhere.
 *
 * Invariant kept for reads after a grow: bytes past the logical size never show
 * old contents.  On shrink the boundary block is sealed (its tail zeroed, made
 * DATA if it still showed base bytes); blocks added by a grow become ZERO where the
 * base still has bytes there (the base is longer than an earlier size), else BASE
 * (which reads zeros past the base's end).  Data blocks cut off by a shrink are
 * punched only after the commit, since the old committed state still owns them.
 */
#include <stdlib.h>

#include "internal.h"

static void clear_tail_entries(struct overlay *ov)
{
	uint64_t nw = ov_words_for(ov->nblocks);

	for (uint64_t b = ov->nblocks; b < nw * 32 && b % 32; b++)
		ov_map_set(ov, b, OVERLAY_BASE);
	for (uint64_t i = (ov->nblocks + 31) / 32; i < nw; i++)
		atomic_store(&ov->map[i], 0);
}

static void recount(struct overlay *ov)
{
	uint64_t nd, nz;

	ov_count_states(ov->map, ov->nblocks, &nd, &nz);
	atomic_store(&ov->ndata, nd);
	atomic_store(&ov->nzero, nz);
	for (uint64_t p = 0; p < ov->npages; p++)
		atomic_store(&ov->page_dirty[p], 1);
}

static int merge_bitmap_resize(struct overlay *ov, uint64_t nblocks)
{
	struct overlay_merge *m = ov->merge;
	uint64_t ow = (m->nbits + 63) / 64, nw = (nblocks + 63) / 64;
	_Atomic uint64_t *d = calloc(nw ? nw : 1, 8);

	if (!d)
		return -ENOMEM;
	for (uint64_t i = 0; i < (ow < nw ? ow : nw); i++)
		d[i] = atomic_load(&m->dirty[i]);
	if (nblocks % 64 && nw <= ow)	/* bits past the end stay clear */
		d[nw - 1] &= (1ull << (nblocks % 64)) - 1;
	free(m->dirty);
	m->dirty = d;
	m->nbits = nblocks;
	return 0;
}

static int change_geometry(struct overlay *ov, uint64_t new_size)
{
	uint64_t old_nb = ov->nblocks;
	int ret = 0;

	if (new_size < ov->size)
		ret = ov_seal_tail(ov, new_size);
	if (!ret && ov->merge)
		ret = merge_bitmap_resize(ov, (new_size + ov->bs - 1) >> ov->shift);
	if (!ret)
		ret = ov_geometry(ov, new_size);
	if (ret)
		return ret;
	ov->need_relocate = true;	/* from here on only a relocating commit is safe */
	clear_tail_entries(ov);
	for (uint64_t b = old_nb; b < ov->nblocks; b++) {
		if ((b << ov->shift) < ov->base_size) {
			ov_map_set(ov, b, OVERLAY_ZERO);
			ov_mark_changed(ov, b);
		}
	}
	recount(ov);
	return 0;
}

static int resize(struct overlay *ov, uint64_t new_size, bool grow_only)
{
	uint64_t old_data_end;
	int ret = 0;

	if (ov->rdonly)
		return -EROFS;
	if (new_size > (1ull << 60))
		return -EFBIG;
	pthread_rwlock_wrlock(&ov->io_lock);
	pthread_mutex_lock(&ov->flush_lock);
	old_data_end = ov->data_off + (ov->nblocks << ov->shift);
	atomic_fetch_add_explicit(&ov->geo_seq, 1, memory_order_acq_rel);	/* odd */
	if (new_size != ov->size && (!grow_only || new_size > ov->size)) {
		ret = change_geometry(ov, new_size);
		if (!ret)
			ret = ov_commit(ov, true);
	}
	uint64_t new_data_end = ov->data_off + (ov->nblocks << ov->shift);

	if (!ret && new_data_end < old_data_end)
		ov_punch(ov->diff_fd, new_data_end, old_data_end - new_data_end);
	atomic_fetch_add_explicit(&ov->geo_seq, 1, memory_order_release);	/* even */
	pthread_mutex_unlock(&ov->flush_lock);
	pthread_rwlock_unlock(&ov->io_lock);
	return ret;
}

int overlay_resize(struct overlay *ov, uint64_t new_size)
{
	return resize(ov, new_size, false);
}

/* For writes past the end: several writers may race to grow; none may shrink. */
int ov_grow(struct overlay *ov, uint64_t new_size)
{
	return resize(ov, new_size, true);
}
