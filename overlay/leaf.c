/* map.c - the in-memory block state map.
 *
 * 2 bits per block packed 32 to a 64-bit word, the same encoding as the payload of
 * an on-disk map page, so committing a page is a plain copy of its 508 words.
 *
 * Readers load a word with acquire ordering and never lock: the read path costs
 * one load per block run.  A state change is a compare-and-swap on the word, so
 * neighbouring blocks (which may be guarded by different stripe locks) never undo
 * each other and no reader sees a half-updated entry.  Transitions of one block are
 * already serialised by its stripe lock, so the CAS only races with neighbours.
 *
 * Ordering invariant used by flush (commit.c): the state store happens after the
 * block's data reached the differencing file, and page_dirty is set after the state
 * store.  A flush clears page_dirty before it snapshots the page, so any change it
 * misses leaves the page dirty for the next flush.
 */
#include <stdlib.h>

#include "internal.h"

static void count_delta(struct overlay *ov, unsigned old, unsigned state)
{
	if (old == OVERLAY_DATA)
		atomic_fetch_sub(&ov->ndata, 1);
	else if (old == OVERLAY_ZERO)
		atomic_fetch_sub(&ov->nzero, 1);
	if (state == OVERLAY_DATA)
		atomic_fetch_add(&ov->ndata, 1);
	else if (state == OVERLAY_ZERO)
		atomic_fetch_add(&ov->nzero, 1);
}

void ov_map_set(struct overlay *ov, uint64_t b, unsigned state)
{
	_Atomic uint64_t *w = &ov->map[b / 32];
	unsigned sh = 2 * (b % 32);
	uint64_t old = atomic_load_explicit(w, memory_order_relaxed), nw;

	do {
		nw = (old & ~(3ull << sh)) | ((uint64_t)state << sh);
	} while (!atomic_compare_exchange_weak_explicit(w, &old, nw, memory_order_acq_rel,
							memory_order_relaxed));
	unsigned prev = (unsigned)(old >> sh) & 3u;

	if (prev == state)
		return;
	count_delta(ov, prev, state);
	atomic_store(&ov->page_dirty[b / OV_BLOCKS_PER_PAGE], 1);
}

/* Make blocks [b, b+n) DATA: one CAS per word instead of one per block, for the
 * sequential write path.  Same ordering rules as ov_map_set. */
void ov_map_set_data_run(struct overlay *ov, uint64_t b, uint64_t n)
{
	const uint64_t lo = 0x5555555555555555ull;
	uint64_t end = b + n, nd = 0, nz = 0;

	while (b < end) {
		uint64_t first = b % 32, cnt = end - b < 32 - first ? end - b : 32 - first;
		uint64_t mask = (cnt == 32 ? ~0ull : ((1ull << (2 * cnt)) - 1)) << (2 * first);
		uint64_t want = lo & mask;
		_Atomic uint64_t *w = &ov->map[b / 32];
		uint64_t old = atomic_load_explicit(w, memory_order_relaxed);

		while (!atomic_compare_exchange_weak_explicit(w, &old, (old & ~mask) | want,
							       memory_order_acq_rel,
							       memory_order_relaxed))
			;
		uint64_t prev = old & mask;

		nd += (uint64_t)__builtin_popcountll(prev & ~(prev >> 1) & lo);
		nz += (uint64_t)__builtin_popcountll((prev >> 1) & ~prev & lo);
		if ((prev & lo) != want || (prev & ~lo))	/* something changed */
			atomic_store(&ov->page_dirty[b / OV_BLOCKS_PER_PAGE], 1);
		b += cnt;
	}
	atomic_fetch_add(&ov->ndata, n - nd);
	atomic_fetch_sub(&ov->nzero, nz);
}

void ov_count_states(const _Atomic uint64_t *map, uint64_t nblocks, uint64_t *ndata,
		     uint64_t *nzero)
{
	uint64_t nd = 0, nz = 0;

	for (uint64_t i = 0; i < (nblocks + 31) / 32; i++) {
		uint64_t w = atomic_load_explicit(&map[i], memory_order_relaxed);

		nd += (uint64_t)__builtin_popcountll(w & ~(w >> 1) & 0x5555555555555555ull);
		nz += (uint64_t)__builtin_popcountll((w >> 1) & ~w & 0x5555555555555555ull);
	}
	*ndata = nd;
	*nzero = nz;
}

/* (Re)allocate map and page_dirty for nblocks, keeping existing entries.  Only
 * called with io_lock held exclusively (or before the handle is shared). */
int ov_map_alloc(struct overlay *ov, uint64_t nblocks)
{
	uint64_t nw = ov_words_for(nblocks), np = ov_pages_for(nblocks);
	uint64_t ow = ov->map ? ov_words_for(ov->nblocks) : 0;
	_Atomic uint64_t *map = calloc(nw + 1, 8);
	_Atomic uint8_t *pd = calloc(np ? np : 1, 1);

	if (!map || !pd) {
		free(map);
		free(pd);
		return -ENOMEM;
	}
	map[0] = nw;	/* length first, so a lockless reader can bound itself */
	map++;
	for (uint64_t i = 0; i < (ow < nw ? ow : nw); i++)
		map[i] = atomic_load(&ov->map[i]);
	for (uint64_t p = 0; ov->page_dirty && p < (ov->npages < np ? ov->npages : np); p++)
		pd[p] = atomic_load(&ov->page_dirty[p]);
	if (ov->map) {	/* lockless readers may still look at it: keep until close */
		struct ov_retired *r = malloc(sizeof(*r));

		if (!r) {
			free(map - 1);
			free(pd);
			return -ENOMEM;
		}
		*r = (struct ov_retired){ ov->map - 1, ov->retired };
		ov->retired = r;
	}
	free(ov->page_dirty);
	ov->map = map;
	ov->page_dirty = pd;
	return 0;
}
