/* resize.c - grow and shrink the logical size.
 *
 * Rare, so it takes io_lock exclusively and commits before returning, as a
 * checkpoint: the chain then never holds a record for a leaf past the current end,
 * which keeps the loader's rules simple (FORMAT.md §4).  The log does not move:
 * it does not depend on the virtual size.
 *
 * Invariant kept for reads after a grow: bytes past the logical size never show
 * old contents.  On shrink the boundary block is sealed (its tail zeroed, made
 * DATA if it still showed base bytes); blocks added by a grow become ZERO where the
 * base still has bytes there (the base is longer than an earlier size), else BASE
 * (which reads zeros past the base's end).  Data blocks cut off by a shrink give
 * their slots back only after the commit, since the old committed state still owns
 * them (I2); they are punched then.
 */
#include <stdlib.h>

#include "internal.h"

/* Entries of blocks at or past nblocks become BASE; their slots wait for the
 * commit. */
static int cut_tail(struct overlay *ov, uint64_t nblocks)
{
	for (struct ov_leaf *l = ov_leaf_ge(ov, nblocks >> OV_LEAF_SHIFT); l;
	     l = ov_leaf_next(l)) {
		for (unsigned i = 0; i < OV_LEAF_BLOCKS; i++) {
			uint64_t b = (l->key << OV_LEAF_SHIFT) + i;
			uint32_t e = atomic_load(&l->e[i]);
			int ret;

			if (b < nblocks || e == OV_E_BASE)
				continue;
			ov_entry_set(ov, l, b, OV_E_BASE);
			if (e >= OV_E_SLOT0 && (ret = ov_slot_release(ov, ov_e_slot(e), true)))
				return ret;
		}
	}
	return 0;
}

static int change_geometry(struct overlay *ov, uint64_t new_size)
{
	uint64_t old_nb = ov->nblocks, nb = (new_size + ov->bs - 1) >> ov->shift;
	int ret = 0;

	if (new_size < ov->size)
		ret = ov_seal_tail(ov, new_size);
	if (!ret && nb < old_nb)
		ret = cut_tail(ov, nb);
	if (ret)
		return ret;
	ov_set_geometry(ov, new_size);
	for (uint64_t b = old_nb; b < nb && (b << ov->shift) < ov->base_size; b++) {
		struct ov_leaf *l;

		ret = ov_leaf_get(ov, b >> OV_LEAF_SHIFT, &l);
		if (ret)
			return ret;
		ov_entry_set(ov, l, b, OV_E_ZERO);
		ov_mark_changed(ov, l, b);
	}
	return 0;
}

static int resize(struct overlay *ov, uint64_t new_size, bool grow_only)
{
	int ret = 0;

	if (ov->rdonly)
		return -EROFS;
	if (new_size > OV_MAX_SIZE)
		return -EFBIG;
	pthread_rwlock_wrlock(&ov->io_lock);
	pthread_mutex_lock(&ov->flush_lock);
	if (new_size != ov->size && (!grow_only || new_size > ov->size)) {
		/* Even half-applied, only a checkpoint may commit it (see above). */
		ov->need_checkpoint = true;
		ret = change_geometry(ov, new_size);
		if (!ret)
			ret = ov_commit(ov, true);
	}
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
