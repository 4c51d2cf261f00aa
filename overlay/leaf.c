/* leaf.c - the in-memory map: leaves of 16 entries, only where something changed.
 *
 * Version 1 held 2 bits for every block of the virtual size (64 MiB per TiB, even
 * for a thin disk with nothing written).  Here a leaf exists only for 16 blocks of
 * which one is, or once was, not BASE, so memory follows what was written.  Each
 * leaf is found two ways:
 *   - by key through an open-addressing hash table of pointers (reads, writes:
 *     O(1) with no lock).  The table only ever gains pointers; growing it builds a
 *     new table under leaf_lock and publishes it, and the old one stays allocated
 *     (retired) until close, so a reader still probing it sees every leaf that
 *     existed when it started and, at worst, misses one being inserted right now,
 *     which is a race with that write like any other.
 *   - in key order through an insert-only skiplist (extent iteration, merges,
 *     commits' checkpoints, resize).  Inserts are serialised by leaf_lock and link
 *     bottom-up with release stores, so a lock-free walker sees a consistent list
 *     that at worst lacks the newest leaf.
 * Leaves are carved out of 64 KiB slabs and freed only at close: nothing a
 * lock-free reader may hold is ever freed under it.
 *
 * Entries change by plain atomic stores: every transition of one block happens
 * under its stripe lock (rw.c), and neighbours live in their own 32-bit words.
 */
#include <stdlib.h>

#include "internal.h"

#define SLAB_SIZE (64u << 10)
#define TABLE_MIN 64u

static uint64_t hash_key(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return k;
}

static struct ov_table *table_new(uint64_t nb)
{
	struct ov_table *t = calloc(1, sizeof(*t) + nb * sizeof(t->b[0]));

	if (t)
		t->mask = nb - 1;
	return t;
}

static size_t leaf_bytes(unsigned level)
{
	size_t n = sizeof(struct ov_leaf) + level * sizeof(struct ov_leaf *);

	return (n + 7) & ~(size_t)7;
}

int ov_map_init(struct overlay *ov)
{
	ov->head = calloc(1, leaf_bytes(OV_SKIP_LEVELS));
	ov->table = table_new(TABLE_MIN);
	if (!ov->head || !ov->table)
		return -ENOMEM;
	ov->head->level = OV_SKIP_LEVELS;
	ov->rng = 0x2545f4914f6cdd1dull;
	atomic_store(&ov->mem_map, leaf_bytes(OV_SKIP_LEVELS) + sizeof(struct ov_table) +
		     TABLE_MIN * sizeof(void *));
	return 0;
}

static void retire(struct overlay *ov, void *p)
{
	struct ov_retired *r = malloc(sizeof(*r));

	if (!r) {	/* cannot keep it for readers: leak rather than free under them */
		return;
	}
	*r = (struct ov_retired){ p, ov->retired };
	ov->retired = r;
}

void ov_map_free(struct overlay *ov)
{
	while (ov->retired) {
		struct ov_retired *r = ov->retired;

		ov->retired = r->next;
		free(r->p);
		free(r);
	}
	free(ov->slab);
	free(ov->table);
	free(ov->head);
}

struct ov_leaf *ov_leaf_find(struct overlay *ov, uint64_t key)
{
	struct ov_table *t = atomic_load_explicit(&ov->table, memory_order_acquire);

	for (uint64_t i = hash_key(key) & t->mask;; i = (i + 1) & t->mask) {
		struct ov_leaf *l = atomic_load_explicit(&t->b[i], memory_order_acquire);

		if (!l || l->key == key)
			return l;
	}
}

uint32_t ov_entry(struct overlay *ov, uint64_t b)
{
	struct ov_leaf *l = ov_leaf_find(ov, b >> OV_LEAF_SHIFT);

	return l ? atomic_load_explicit(&l->e[b % OV_LEAF_BLOCKS], memory_order_acquire) :
		OV_E_BASE;
}

static void table_put(struct ov_table *t, struct ov_leaf *l)
{
	uint64_t i = hash_key(l->key) & t->mask;

	while (atomic_load_explicit(&t->b[i], memory_order_relaxed))
		i = (i + 1) & t->mask;
	atomic_store_explicit(&t->b[i], l, memory_order_release);
}

/* Load at most 1/2: probes stay short and an empty slot always ends a probe. */
static int table_grow(struct overlay *ov)
{
	struct ov_table *old = ov->table, *t;
	uint64_t nb = (old->mask + 1) * 2;

	if (ov->nleaves + 1 <= (old->mask + 1) / 2)
		return 0;
	t = table_new(nb);
	if (!t)
		return -ENOMEM;
	for (struct ov_leaf *l = ov_leaf_next(ov->head); l; l = ov_leaf_next(l))
		table_put(t, l);
	atomic_store_explicit(&ov->table, t, memory_order_release);
	retire(ov, old);
	atomic_fetch_add(&ov->mem_map, nb * sizeof(void *) + sizeof(*t));
	return 0;
}

static struct ov_leaf *slab_take(struct overlay *ov, size_t n)
{
	if (!ov->slab || ov->slab_used + n > SLAB_SIZE) {
		uint8_t *s = calloc(1, SLAB_SIZE);

		if (!s)
			return NULL;
		if (ov->slab)
			retire(ov, ov->slab);	/* still holds live leaves: freed at close */
		ov->slab = s;
		ov->slab_used = 0;
		atomic_fetch_add(&ov->mem_map, SLAB_SIZE);
	}
	ov->slab_used += n;
	return (struct ov_leaf *)(ov->slab + ov->slab_used - n);
}

/* Geometric heights (p = 1/4) from a private xorshift: deterministic per run. */
static unsigned random_level(struct overlay *ov)
{
	unsigned lv = 1;

	ov->rng ^= ov->rng << 13;
	ov->rng ^= ov->rng >> 7;
	ov->rng ^= ov->rng << 17;
	for (uint64_t r = ov->rng; lv < OV_SKIP_LEVELS && (r & 3) == 0; r >>= 2)
		lv++;
	return lv;
}

/* Rightmost leaf below key at every level (preds), walking from the head. */
static void find_preds(struct overlay *ov, uint64_t key, struct ov_leaf **preds)
{
	struct ov_leaf *x = ov->head;

	for (int lv = OV_SKIP_LEVELS - 1; lv >= 0; lv--) {
		struct ov_leaf *n;

		while ((n = atomic_load_explicit(&x->next[lv], memory_order_acquire)) &&
		       n->key < key)
			x = n;
		preds[lv] = x;
	}
}

struct ov_leaf *ov_leaf_ge(struct overlay *ov, uint64_t key)
{
	struct ov_leaf *preds[OV_SKIP_LEVELS];

	find_preds(ov, key, preds);
	return ov_leaf_next(preds[0]);
}

static int leaf_insert(struct overlay *ov, uint64_t key, struct ov_leaf **out)
{
	struct ov_leaf *preds[OV_SKIP_LEVELS], *l;
	unsigned lv;
	int ret;

	if ((l = ov_leaf_find(ov, key))) {	/* inserted by someone else meanwhile */
		*out = l;
		return 0;
	}
	ret = table_grow(ov);
	if (ret)
		return ret;
	lv = random_level(ov);
	l = slab_take(ov, leaf_bytes(lv));
	if (!l)
		return -ENOMEM;
	l->key = key;
	l->level = (uint8_t)lv;
	find_preds(ov, key, preds);
	for (unsigned i = 0; i < lv; i++) {	/* bottom-up: level 0 makes it reachable */
		atomic_store_explicit(&l->next[i], atomic_load(&preds[i]->next[i]),
				      memory_order_relaxed);
		atomic_store_explicit(&preds[i]->next[i], l, memory_order_release);
	}
	table_put(ov->table, l);
	ov->nleaves++;
	*out = l;
	return 0;
}

int ov_leaf_get(struct overlay *ov, uint64_t key, struct ov_leaf **out)
{
	int ret;

	*out = ov_leaf_find(ov, key);
	if (*out)
		return 0;
	pthread_mutex_lock(&ov->leaf_lock);
	ret = leaf_insert(ov, key, out);
	pthread_mutex_unlock(&ov->leaf_lock);
	return ret;
}

/* Lock-free push onto the commit's stack; only the 0 -> 1 transition pushes, and
 * a commit collects its stack before clearing the flags (commit.c), so dirty_next
 * is never rewritten while a commit walks it. */
void ov_leaf_mark_dirty(struct overlay *ov, struct ov_leaf *l)
{
	if (atomic_exchange(&l->dirty, 1))
		return;
	struct ov_leaf *h = atomic_load(&ov->dirty_head);

	do {
		l->dirty_next = h;
	} while (!atomic_compare_exchange_weak(&ov->dirty_head, &h, l));
}

static void count_delta(struct overlay *ov, uint32_t old, uint32_t e)
{
	unsigned so = ov_e_state(old), sn = ov_e_state(e);

	if (so == sn)
		return;
	if (so == OVERLAY_DATA)
		atomic_fetch_sub(&ov->ndata, 1);
	else if (so == OVERLAY_ZERO)
		atomic_fetch_sub(&ov->nzero, 1);
	if (sn == OVERLAY_DATA)
		atomic_fetch_add(&ov->ndata, 1);
	else if (sn == OVERLAY_ZERO)
		atomic_fetch_add(&ov->nzero, 1);
}

/* Caller holds block b's stripe lock (or io_lock exclusively). */
void ov_entry_set(struct overlay *ov, struct ov_leaf *l, uint64_t b, uint32_t e)
{
	uint32_t old = atomic_exchange_explicit(&l->e[b % OV_LEAF_BLOCKS], e,
						memory_order_acq_rel);

	assert(l->key == b >> OV_LEAF_SHIFT);
	if (old == e)
		return;
	count_delta(ov, old, e);
	ov_leaf_mark_dirty(ov, l);	/* I4: after the entry */
}

void ov_leaf_count(const uint32_t *e, unsigned *nd, unsigned *nz)
{
	*nd = *nz = 0;
	for (unsigned i = 0; i < OV_LEAF_BLOCKS; i++) {
		*nd += e[i] >= OV_E_SLOT0;
		*nz += e[i] == OV_E_ZERO;
	}
}
