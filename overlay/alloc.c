/* alloc.c - where new blocks go in the log.
 *
 * The log is a sequence of block-sized slots after the header area.  A block that
 * becomes DATA gets a slot here; later writes to it go to the same slot (in place),
 * so a guest rewriting one block forever never grows the file.  A slot comes back
 * when its block is discarded or cut off by a shrink, or when a checkpoint
 * supersedes a record block; it first waits on the pending list until the commit
 * that drops the committed state's reference is durable (I2, commit.c), then joins
 * the free extents.
 *
 * Policy: the lowest free slot first, then the end of the log.  Hence the log never
 * holds more slots than the most blocks that were ever live at once plus those
 * waiting for a commit, and, without discards, new blocks are appended in write
 * order: few extents, sequential writeback, and a merge that reads the file
 * front to back (FORMAT.md "Why a log").
 *
 * Free extents are a sorted array with a moving head: allocation takes from the
 * front, a commit merges its sorted batch of freed slots in one pass.
 */
#include <stdlib.h>

#include "internal.h"

int ov_vec_push(struct ov_vec *v, uint64_t x)
{
	if (v->n == v->cap) {
		uint64_t cap = v->cap ? v->cap * 2 : 64;
		uint64_t *p = realloc(v->v, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		v->v = p;
		v->cap = cap;
	}
	v->v[v->n++] = x;
	return 0;
}

void ov_vec_free(struct ov_vec *v)
{
	free(v->v);
	*v = (struct ov_vec){ 0 };
}

/* Caller holds alloc_lock. */
static int64_t take(struct overlay *ov, uint64_t want, uint64_t *first)
{
	if (ov->nfree) {
		struct ov_ext *e = &ov->free[0];
		uint64_t n = want < e->len ? want : e->len;

		*first = e->start;
		e->start += n;
		e->len -= n;
		ov->free_blocks -= n;
		if (!e->len) {
			memmove(ov->free, ov->free + 1, (ov->nfree - 1) * sizeof(*ov->free));
			ov->nfree--;
		}
		return (int64_t)n;
	}
	uint64_t end = atomic_load_explicit(&ov->log_end, memory_order_relaxed);

	if (end >= OV_LOG_MAX)
		return -ENOSPC;	/* FORMAT.md: at most OV_LOG_MAX slots */
	if (want > OV_LOG_MAX - end)
		want = OV_LOG_MAX - end;
	*first = end;
	atomic_store_explicit(&ov->log_end, end + want, memory_order_release);	/* I3 */
	return (int64_t)want;
}

int64_t ov_slots_alloc(struct overlay *ov, uint64_t want, uint64_t *first)
{
	int64_t n;

	assert(want > 0);
	pthread_mutex_lock(&ov->alloc_lock);
	n = take(ov, want, first);
	pthread_mutex_unlock(&ov->alloc_lock);
	return n;
}

/* Merge sorted, unique slots into the free extents (alloc_lock held). */
static int merge_free(struct overlay *ov, const uint64_t *s, uint64_t n)
{
	uint64_t cap = ov->nfree + n, i = 0, j = 0, k = 0;
	struct ov_ext *out;

	if (!n)
		return 0;
	out = malloc(cap * sizeof(*out));
	if (!out)
		return -ENOMEM;
	while (i < ov->nfree || j < n) {
		struct ov_ext x;

		if (j >= n || (i < ov->nfree && ov->free[i].start < s[j]))
			x = ov->free[i++];
		else
			x = (struct ov_ext){ s[j++], 1 };
		if (k && out[k - 1].start + out[k - 1].len == x.start) {
			out[k - 1].len += x.len;
		} else {
			assert(!k || out[k - 1].start + out[k - 1].len < x.start);
			out[k++] = x;
		}
	}
	free(ov->free);
	ov->free = out;
	ov->nfree = k;
	ov->free_cap = cap;
	ov->free_blocks += n;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Slots handed out but never referenced by any state (a failed write, a failed
 * commit's record blocks): free at once. */
void ov_slots_unalloc(struct overlay *ov, uint64_t first, uint64_t n)
{
	uint64_t *s = malloc(n * sizeof(*s));

	if (!s)
		return;		/* the slots stay unused garbage: space only */
	for (uint64_t i = 0; i < n; i++)
		s[i] = first + i;
	pthread_mutex_lock(&ov->alloc_lock);
	merge_free(ov, s, n);
	pthread_mutex_unlock(&ov->alloc_lock);
	free(s);
}

/* A block dropped its reference to slot: it waits for the next commit (I2). */
int ov_slot_release(struct overlay *ov, uint64_t slot, bool punch_later)
{
	int ret;

	pthread_mutex_lock(&ov->alloc_lock);
	ret = ov_vec_push(&ov->pending, slot | (punch_later ? OV_PEND_PUNCH : 0));
	pthread_mutex_unlock(&ov->alloc_lock);
	return ret;
}

/* After a commit is durable: its freed slots become allocatable.  reuse_seq moves
 * first, so a lock-free reader that looked a slot up before retries (rw.c). */
int ov_free_take_sorted(struct overlay *ov, uint64_t *slots, uint64_t n)
{
	int ret;

	if (!n)
		return 0;	/* nothing reusable: readers need not retry */
	for (uint64_t i = 0; i < n; i++)
		slots[i] &= ~OV_PEND_PUNCH;
	qsort(slots, n, sizeof(*slots), cmp_u64);
	pthread_mutex_lock(&ov->alloc_lock);
	atomic_fetch_add(&ov->reuse_seq, 1);
	ret = merge_free(ov, slots, n);
	pthread_mutex_unlock(&ov->alloc_lock);
	return ret;
}
