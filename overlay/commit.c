/* commit.c - make the in-memory map durable: the heart of crash safety.
 *
 * A commit moves the file from generation g to g+1:
 *
 *   1. take the pending frees (alloc.c) and the stack of leaves changed since the
 *      last commit; clear each leaf's dirty flag, then copy its entries into a
 *      record.  Every DATA entry copied was stored after its data write returned
 *      (I4), so that data is covered by step 3.  A change racing the copy dirties
 *      the leaf again for the next commit.
 *   2. write the records, sorted by leaf, into record blocks at freshly allocated
 *      slots (never a slot the committed state references: I1, I2), chained to
 *      the committed chain's head.
 *   3. fdatasync: the data the records point at and the records themselves are
 *      durable before anything refers to them.
 *   4. write header g+1 (chain head, log end, counts) into slot (g+1) & 1, the slot
 *      not holding g, and fdatasync.  This single 4 KiB write is the commit point:
 *      a torn header fails its checksum and open falls back to g, whose chain and
 *      data are untouched (steps 2-3 only wrote slots g does not use).
 *   5. only now do the pending frees taken in step 1 (and, for a checkpoint, the
 *      old chain's blocks) become free (I2).
 *
 * Version 1 needed three fdatasyncs per commit (data, pages, header); the chain
 * needs two.  Commits append, so the chain grows; when it holds more than twice
 * the records of a full map (or after a resize, or to turn a version-1 file into
 * version 2) the commit is a checkpoint: every non-empty leaf, as a new chain
 * whose first block has no predecessor, and the old chain's slots are freed.
 *
 * If anything fails, the leaves are dirtied again, the pending frees put back and
 * the new record slots freed (nothing refers to them); the in-memory committed
 * header is unchanged and the next commit simply tries again.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

struct snap {
	struct ov_leaf **dirty;		/* leaves taken off the dirty stack */
	uint64_t ndirty;
	struct ov_leaf **leaf;		/* leaves recorded, in key order */
	uint8_t *cnt;			/* their new data / zero counts, 2 bytes each */
	uint8_t *recs;			/* encoded records */
	uint64_t nrec, cap;
	struct ov_vec pend;		/* pending frees taken */
	struct ov_vec slots;		/* record block slots allocated */
	bool checkpoint;
};

static int sync_fd(int fd)
{
	return fdatasync(fd) ? -errno : 0;
}

static int cmp_leaf(const void *a, const void *b)
{
	uint64_t x = (*(struct ov_leaf *const *)a)->key, y = (*(struct ov_leaf *const *)b)->key;

	return x < y ? -1 : x > y;
}

static int take_dirty(struct overlay *ov, struct snap *s)
{
	struct ov_leaf *h = atomic_exchange(&ov->dirty_head, NULL);
	uint64_t n = 0, cap = 64;

	s->dirty = malloc(cap * sizeof(*s->dirty));
	if (!s->dirty) {
		atomic_store(&ov->dirty_head, h);	/* nobody else pushes below it */
		return -ENOMEM;
	}
	for (struct ov_leaf *l = h; l; l = l->dirty_next) {
		if (n == cap) {
			struct ov_leaf **p = realloc(s->dirty, 2 * cap * sizeof(*p));

			if (!p) {	/* flags still set: push them all back */
				s->ndirty = n;
				for (struct ov_leaf *r = l; r; ) {
					struct ov_leaf *nx = r->dirty_next;

					atomic_store(&r->dirty, 0);
					ov_leaf_mark_dirty(ov, r);
					r = nx;
				}
				for (uint64_t i = 0; i < n; i++) {
					atomic_store(&s->dirty[i]->dirty, 0);
					ov_leaf_mark_dirty(ov, s->dirty[i]);
				}
				s->ndirty = 0;
				return -ENOMEM;
			}
			s->dirty = p;
			cap *= 2;
		}
		s->dirty[n++] = l;
	}
	/* Collected first, cleared after: dirty_next is free for new pushes now. */
	for (uint64_t i = 0; i < n; i++)
		atomic_store(&s->dirty[i]->dirty, 0);
	s->ndirty = n;
	return 0;
}

static int add_record(struct snap *s, struct ov_leaf *l)
{
	uint32_t e[OV_LEAF_BLOCKS];
	unsigned nd, nz;

	for (unsigned i = 0; i < OV_LEAF_BLOCKS; i++)
		e[i] = atomic_load_explicit(&l->e[i], memory_order_acquire);
	ov_leaf_count(e, &nd, &nz);
	if (s->checkpoint && !nd && !nz)
		return 0;	/* all BASE: a fresh chain needs no record for it */
	if (s->nrec == s->cap) {
		uint64_t cap = s->cap ? 2 * s->cap : 256;
		struct ov_leaf **lp = realloc(s->leaf, cap * sizeof(*lp));
		uint8_t *cp = lp ? realloc(s->cnt, cap * 2) : NULL;
		uint8_t *rp = cp ? realloc(s->recs, cap * OV_REC_SIZE) : NULL;

		if (lp)
			s->leaf = lp;
		if (cp)
			s->cnt = cp;
		if (!rp)
			return -ENOMEM;
		s->recs = rp;
		s->cap = cap;
	}
	uint8_t *r = s->recs + s->nrec * OV_REC_SIZE;

	ov_put64(r, l->key);
	for (unsigned i = 0; i < OV_LEAF_BLOCKS; i++)
		ov_put32(r + 8 + 4 * i, e[i]);
	s->leaf[s->nrec] = l;
	s->cnt[2 * s->nrec] = (uint8_t)nd;
	s->cnt[2 * s->nrec + 1] = (uint8_t)nz;
	s->nrec++;
	return 0;
}

static bool want_checkpoint(struct overlay *ov, uint64_t ndirty)
{
	uint64_t full = ov->nleaves / ov_rec_per_block(ov->bs) + 1;

	return ov->need_checkpoint || ov->chain_recs + ndirty > 2 * ov->nleaves + 256 ||
	       ov->chain.n > 2 * full + 64;
}

static int snap_take(struct overlay *ov, bool checkpoint, struct snap *s)
{
	int ret;

	pthread_mutex_lock(&ov->alloc_lock);	/* pending first: see the file comment */
	s->pend = ov->pending;
	ov->pending = (struct ov_vec){ 0 };
	pthread_mutex_unlock(&ov->alloc_lock);
	ret = take_dirty(ov, s);
	if (ret)
		return ret;
	s->checkpoint = checkpoint || want_checkpoint(ov, s->ndirty);
	if (s->checkpoint) {
		for (struct ov_leaf *l = ov_leaf_next(ov->head); l && !ret; l = ov_leaf_next(l))
			ret = add_record(s, l);
		return ret;
	}
	qsort(s->dirty, s->ndirty, sizeof(*s->dirty), cmp_leaf);
	for (uint64_t i = 0; i < s->ndirty && !ret; i++)
		ret = add_record(s, s->dirty[i]);
	return ret;
}

static void snap_undo(struct overlay *ov, struct snap *s)
{
	for (uint64_t i = 0; i < s->ndirty; i++)
		ov_leaf_mark_dirty(ov, s->dirty[i]);
	pthread_mutex_lock(&ov->alloc_lock);
	for (uint64_t i = 0; i < s->pend.n; i++)
		if (ov_vec_push(&ov->pending, s->pend.v[i]))
			break;	/* lost frees: garbage slots, space only */
	pthread_mutex_unlock(&ov->alloc_lock);
	for (uint64_t i = 0; i < s->slots.n; i++)
		ov_slots_unalloc(ov, s->slots.v[i], 1);
}

static void snap_free(struct snap *s)
{
	free(s->dirty);
	free(s->leaf);
	free(s->cnt);
	free(s->recs);
	ov_vec_free(&s->pend);
	ov_vec_free(&s->slots);
}

/* Steps 2: record blocks at new slots, each naming its predecessor. */
static int write_records(struct overlay *ov, struct snap *s, struct ov_meta *nm)
{
	uint32_t per = ov_rec_per_block(ov->bs);
	uint64_t prev = s->checkpoint ? OV_NO_SLOT : ov->meta.chain_head;
	uint64_t seq = s->checkpoint ? 0 : ov->meta.chain_len;
	uint8_t *blk = ov_alloc(ov->bs);
	int ret = blk ? 0 : -ENOMEM;

	for (uint64_t i = 0; i < s->nrec && !ret; i += per) {
		struct ov_rechdr h = { .gen = nm->gen, .seq = seq++, .prev = prev };
		int64_t got;

		h.nrec = (uint32_t)(s->nrec - i < per ? s->nrec - i : per);
		h.len = (uint32_t)ov_round_up(OV_REC_HDR + (uint64_t)h.nrec * OV_REC_SIZE,
					      OV_PAGE_SIZE);
		got = ov_slots_alloc(ov, 1, &h.slot);
		if (got < 0) {
			ret = (int)got;
			break;
		}
		ret = ov_vec_push(&s->slots, h.slot);
		if (ret) {
			ov_slots_unalloc(ov, h.slot, 1);
			break;
		}
		ov_rec_encode(blk, &h, s->recs + i * OV_REC_SIZE);
		ret = ov_pwrite(ov->diff_fd, ov->diff_direct, blk, h.len, ov_slot_off(ov, h.slot));
		prev = h.slot;
	}
	free(blk);
	nm->chain_head = prev;
	nm->chain_len = seq;
	return ret;
}

static void totals(struct overlay *ov, struct snap *s, struct ov_meta *nm)
{
	uint64_t nd = s->checkpoint ? 0 : ov->meta.ndata;
	uint64_t nz = s->checkpoint ? 0 : ov->meta.nzero;

	for (uint64_t i = 0; i < s->nrec; i++) {
		struct ov_leaf *l = s->leaf[i];

		if (!s->checkpoint) {
			nd -= l->cnd;
			nz -= l->cnz;
		}
		nd += s->cnt[2 * i];
		nz += s->cnt[2 * i + 1];
	}
	nm->ndata = nd;
	nm->nzero = nz;
}

/* The file reaches at least the end of the committed log, even where a slot's
 * write is still in flight, so a reader can tell a truncated file (load.c). */
static int cover_log(struct overlay *ov, uint64_t log_end)
{
	uint64_t need = ov_slot_off(ov, log_end);
	struct stat st;

	if (fstat(ov->diff_fd, &st))
		return -errno;
	if ((uint64_t)st.st_size < need && ftruncate(ov->diff_fd, (off_t)need))
		return -errno;
	return 0;
}

int ov_write_header(struct overlay *ov, const struct ov_meta *nm)
{
	uint8_t *slot = ov_alloc(OV_HDR_LEN);
	int ret;

	if (!slot)
		return -ENOMEM;
	ov_header_encode(nm, slot);
	ret = ov_pwrite(ov->diff_fd, ov->diff_direct, slot, OV_HDR_LEN,
			(nm->gen & 1) * OV_HDR_SLOT);
	free(slot);
	return ret ? ret : sync_fd(ov->diff_fd);
}

/* Step 5 and the in-memory bookkeeping of a commit that is now durable. */
static void committed(struct overlay *ov, struct snap *s, struct ov_meta *nm)
{
	if (s->checkpoint)	/* leaves without a record are empty */
		for (struct ov_leaf *l = ov_leaf_next(ov->head); l; l = ov_leaf_next(l))
			l->cnd = l->cnz = 0;
	for (uint64_t i = 0; i < s->nrec; i++) {
		s->leaf[i]->cnd = s->cnt[2 * i];
		s->leaf[i]->cnz = s->cnt[2 * i + 1];
	}
	for (uint64_t i = 0; i < s->pend.n; i++)
		if (s->pend.v[i] & OV_PEND_PUNCH)
			ov_punch(ov->diff_fd, ov_slot_off(ov, s->pend.v[i] & ~OV_PEND_PUNCH),
				 ov->bs);	/* space only */
	if (s->checkpoint) {
		/* Old record blocks are not punched: a slot reused in place keeps the
		 * file's extents whole (FORMAT.md "Why a log"). */
		for (uint64_t i = 0; i < ov->chain.n; i++)
			if (ov_vec_push(&s->pend, ov->chain.v[i]))
				break;	/* garbage slots, space only */
		ov_vec_free(&ov->chain);
		ov->chain_recs = 0;
	}
	for (uint64_t i = 0; i < s->slots.n; i++)
		if (ov_vec_push(&ov->chain, s->slots.v[i]))
			break;	/* an unknown chain slot is never freed: space only */
	ov->chain_recs += s->nrec;
	ov_free_take_sorted(ov, s->pend.v, s->pend.n);
	ov_meta_free(&ov->meta);
	ov->meta = *nm;
	ov->need_checkpoint = ov->repair_header = false;
}

int ov_commit(struct overlay *ov, bool checkpoint)
{
	struct ov_meta nm = ov->meta;
	struct snap s = { 0 };
	int ret;

	if (ov->rdonly)
		return -EROFS;
	nm.dir = NULL;
	nm.version = OV_VERSION;
	nm.hdr_len = OV_HDR_LEN;
	nm.gen = ov->meta.gen + 1;
	nm.flags = ov->want_flags;
	nm.size = ov->size;
	nm.nblocks = ov->nblocks;
	nm.block_shift = ov->shift;
	nm.data_off = ov->data_off;
	if (ov->meta.version != OV_VERSION)
		ov->need_checkpoint = true;
	ret = snap_take(ov, checkpoint, &s);
	if (!ret && !s.nrec && !s.pend.n && !s.checkpoint && nm.flags == ov->meta.flags &&
	    !ov->repair_header) {
		ret = sync_fd(ov->diff_fd);	/* nothing changed in the map */
		goto out;
	}
	ret = ret ?: write_records(ov, &s, &nm);
	nm.log_end = atomic_load(&ov->log_end);	/* I3: covers every slot above */
	ret = ret ?: cover_log(ov, nm.log_end);
	ret = ret ?: sync_fd(ov->diff_fd);
	if (!ret) {
		totals(ov, &s, &nm);
		ret = ov_write_header(ov, &nm);
	}
	if (!ret) {
		committed(ov, &s, &nm);
		s.pend.n = 0;
		s.slots.n = 0;
		s.ndirty = 0;
	}
out:
	if (ret)
		snap_undo(ov, &s);
	snap_free(&s);
	return ret;
}

int overlay_flush(struct overlay *ov)
{
	int ret;

	if (ov->rdonly)
		return 0;
	pthread_rwlock_rdlock(&ov->io_lock);
	pthread_mutex_lock(&ov->flush_lock);
	ret = ov_commit(ov, false);
	pthread_mutex_unlock(&ov->flush_lock);
	pthread_rwlock_unlock(&ov->io_lock);
	return ret;
}
