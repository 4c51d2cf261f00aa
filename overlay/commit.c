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
	struct ov_vec pend;		/* pending frees taken */
	struct ov_vec slots;		/* record block slots written */
	bool checkpoint;
	uint64_t nrec, ndata, nzero;	/* records written; the new header's counts */
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
	if (!s->checkpoint)
		qsort(s->dirty, s->ndirty, sizeof(*s->dirty), cmp_leaf);
	return 0;
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
	ov_vec_free(&s->pend);
	ov_vec_free(&s->slots);
}

/* Record blocks are filled and written one at a time, so a commit of many leaves
 * needs one block of memory, not one record per leaf. */
struct recw {
	uint8_t *blk, *recs;
	uint32_t n, per;
	uint64_t prev, seq, gen;
};

/* Step 2 for one full (or the last) block: a new slot, naming its predecessor. */
static int recw_flush(struct overlay *ov, struct snap *s, struct recw *w)
{
	struct ov_rechdr h = { .gen = w->gen, .seq = w->seq, .prev = w->prev, .nrec = w->n };
	int64_t got;
	int ret;

	if (!w->n)
		return 0;
	h.len = (uint32_t)ov_round_up(OV_REC_HDR + (uint64_t)h.nrec * OV_REC_SIZE, OV_PAGE_SIZE);
	got = ov_slots_alloc(ov, 1, &h.slot);
	if (got < 0)
		return (int)got;
	ret = ov_vec_push(&s->slots, h.slot);
	if (ret) {
		ov_slots_unalloc(ov, h.slot, 1);
		return ret;
	}
	ov_rec_encode(w->blk, &h, w->recs);
	ret = ov_pwrite(ov->diff_fd, ov->diff_direct, w->blk, h.len, ov_slot_off(ov, h.slot));
	w->prev = h.slot;
	w->seq++;
	w->n = 0;
	return ret;
}

/* Snapshot one leaf into the current block: its entries now, its counts kept in
 * the leaf (snd/snz) until the commit is durable. */
static int recw_add(struct overlay *ov, struct snap *s, struct recw *w, struct ov_leaf *l)
{
	uint32_t e[OV_LEAF_BLOCKS];
	unsigned nd, nz;
	uint8_t *r;

	for (unsigned i = 0; i < OV_LEAF_BLOCKS; i++)
		e[i] = atomic_load_explicit(&l->e[i], memory_order_acquire);
	ov_leaf_count(e, &nd, &nz);
	l->snd = (uint8_t)nd;
	l->snz = (uint8_t)nz;
	if (s->checkpoint && !nd && !nz)
		return 0;	/* all BASE: a fresh chain needs no record for it */
	s->ndata = s->ndata + nd - (s->checkpoint ? 0 : l->cnd);	/* in 64 bits */
	s->nzero = s->nzero + nz - (s->checkpoint ? 0 : l->cnz);
	r = w->recs + (size_t)w->n * OV_REC_SIZE;
	ov_put64(r, l->key);
	for (unsigned i = 0; i < OV_LEAF_BLOCKS; i++)
		ov_put32(r + 8 + 4 * i, e[i]);
	s->nrec++;
	return ++w->n == w->per ? recw_flush(ov, s, w) : 0;
}

/* Steps 1 (the copy) and 2: every dirty leaf in key order, or for a checkpoint
 * every leaf, as records of a chain that continues the committed one or, for a
 * checkpoint, starts afresh. */
static int write_records(struct overlay *ov, struct snap *s, struct ov_meta *nm)
{
	struct recw w = { .per = ov_rec_per_block(ov->bs), .gen = nm->gen,
			  .prev = s->checkpoint ? OV_NO_SLOT : ov->meta.chain_head,
			  .seq = s->checkpoint ? 0 : ov->meta.chain_len };
	int ret = 0;

	w.blk = ov_alloc(ov->bs);
	w.recs = malloc((size_t)w.per * OV_REC_SIZE);
	if (!w.blk || !w.recs)
		ret = -ENOMEM;
	s->ndata = s->checkpoint ? 0 : ov->meta.ndata;
	s->nzero = s->checkpoint ? 0 : ov->meta.nzero;
	if (s->checkpoint)
		for (struct ov_leaf *l = ov_leaf_next(ov->head); l && !ret; l = ov_leaf_next(l))
			ret = recw_add(ov, s, &w, l);
	else
		for (uint64_t i = 0; i < s->ndirty && !ret; i++)
			ret = recw_add(ov, s, &w, s->dirty[i]);
	ret = ret ?: recw_flush(ov, s, &w);
	free(w.blk);
	free(w.recs);
	nm->chain_head = w.prev;
	nm->chain_len = w.seq;
	nm->ndata = s->ndata;
	nm->nzero = s->nzero;
	return ret;
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
	/* A leaf inserted after the copy was never snapshotted: its snd/snz are still
	 * 0 from its allocation, as are its committed counts. */
	if (s->checkpoint)
		for (struct ov_leaf *l = ov_leaf_next(ov->head); l; l = ov_leaf_next(l)) {
			l->cnd = l->snd;
			l->cnz = l->snz;
		}
	for (uint64_t i = 0; !s->checkpoint && i < s->ndirty; i++) {
		s->dirty[i]->cnd = s->dirty[i]->snd;
		s->dirty[i]->cnz = s->dirty[i]->snz;
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
	if (!ret && !s.ndirty && !s.pend.n && !s.checkpoint && nm.flags == ov->meta.flags &&
	    !ov->repair_header) {
		ret = sync_fd(ov->diff_fd);	/* nothing changed in the map */
		goto out;
	}
	ret = ret ?: write_records(ov, &s, &nm);
	nm.log_end = atomic_load(&ov->log_end);	/* I3: covers every slot above */
	ret = ret ?: cover_log(ov, nm.log_end);
	ret = ret ?: sync_fd(ov->diff_fd);
	ret = ret ?: ov_write_header(ov, &nm);
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
