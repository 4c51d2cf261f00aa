/* plan.c - see plan.h.
 *
 * Both planners work on a private copy of each datastore's used bytes, so what they
 * plan earlier counts against what they plan later; neither changes its input but
 * the items' dst. Greedy on purpose: an admin reads the plan before it runs, and a
 * greedy plan is one a person can check by hand (largest first onto the emptiest).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dsspec.h"
#include "plan.h"

struct order { uint64_t bytes; size_t i; };

static int by_bytes_desc(const void *a, const void *b)
{
	const struct order *x = a, *y = b;

	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/* Would bytes more on datastore d keep its used bytes within limit (0-1)? */
static bool fits(const struct plan_ds *d, uint64_t used, uint64_t bytes, double limit)
{
	return used + bytes <= d->size && (double)(used + bytes) <= limit * (double)d->size;
}

static void used_of(const struct plan_ds *ds, int nds, uint64_t *used)
{
	for (int i = 0; i < nds; i++)
		used[i] = ds[i].size > ds[i].avail ? ds[i].size - ds[i].avail : 0;
}

/* The allowed datastore, other than not, with the most free bytes that bytes fit
 * on within limit; -1 if none. */
static int most_free(const struct plan_ds *ds, int nds, const uint64_t *used, int not,
		     uint64_t bytes, double limit)
{
	int best = -1;

	for (int d = 0; d < nds; d++) {
		if (d == not || !ds[d].dest_ok || !fits(&ds[d], used[d], bytes, limit))
			continue;
		if (best < 0 || ds[d].size - used[d] > ds[best].size - used[best])
			best = d;
	}
	return best;
}

int plan_evacuate(const struct plan_ds *ds, int nds, int src, struct plan_item *it, size_t n,
		  double max_fill, uint64_t *shortfall)
{
	uint64_t used[VDS_MAX_DS];
	size_t unplaced = 0;
	struct order *o;

	*shortfall = 0;
	if (nds < 0 || nds > VDS_MAX_DS || src < 0 || src >= nds || !(max_fill > 0 && max_fill <= 1))
		return -EINVAL;
	o = malloc((n ? n : 1) * sizeof(*o));
	if (!o)
		return -ENOMEM;
	used_of(ds, nds, used);
	for (size_t i = 0; i < n; i++)
		o[i] = (struct order){ it[i].bytes, i };
	qsort(o, n, sizeof(*o), by_bytes_desc);
	for (size_t k = 0; k < n; k++) {
		struct plan_item *x = &it[o[k].i];
		int d = most_free(ds, nds, used, src, x->bytes, max_fill);

		x->dst = d;
		if (d < 0) {
			*shortfall += x->bytes;
			unplaced++;
		} else {
			used[d] += x->bytes;
		}
	}
	free(o);
	return unplaced ? -ENOSPC : 0;
}

static bool over(const struct plan_ds *d, uint64_t used, double threshold)
{
	return (double)used > threshold * (double)d->size;
}

/* The move that helps over-full datastore s most for the fewest bytes: the index
 * of the item, with its destination in *dst; -1 if no item of s fits anywhere. */
static long best_move(const struct plan_ds *ds, int nds, const uint64_t *used, int s,
		      const struct plan_item *it, size_t n, double threshold, int *dst)
{
	double excess = (double)used[s] - threshold * (double)ds[s].size;
	long under = -1, largest = -1;
	int under_dst = -1, largest_dst = -1;

	for (size_t i = 0; i < n; i++) {
		int d;

		if (it[i].src != s || it[i].dst >= 0 || !it[i].bytes)
			continue;
		d = most_free(ds, nds, used, s, it[i].bytes, threshold);
		if (d < 0)
			continue;
		if ((double)it[i].bytes >= excess &&
		    (under < 0 || it[i].bytes < it[under].bytes)) {
			under = (long)i;
			under_dst = d;
		}
		if (largest < 0 || it[i].bytes > it[largest].bytes) {
			largest = (long)i;
			largest_dst = d;
		}
	}
	*dst = under >= 0 ? under_dst : largest_dst;
	return under >= 0 ? under : largest;
}

/* Moves off s until it is under threshold: how many, or -1 (and none planned) if
 * it cannot get there, since moves that leave it over would only shuffle data. */
static int drain(const struct plan_ds *ds, int nds, uint64_t *used, int s,
		 struct plan_item *it, size_t n, double threshold)
{
	size_t *done = malloc((n ? n : 1) * sizeof(*done));
	int k = 0, d;
	long i;

	if (!done)
		return -1;
	while (over(&ds[s], used[s], threshold) &&
	       (i = best_move(ds, nds, used, s, it, n, threshold, &d)) >= 0) {
		it[i].dst = d;
		used[s] -= it[i].bytes;
		used[d] += it[i].bytes;
		done[k++] = (size_t)i;
	}
	if (over(&ds[s], used[s], threshold)) {
		while (k-- > 0) {	/* undo */
			struct plan_item *x = &it[done[k]];

			used[x->dst] -= x->bytes;
			used[s] += x->bytes;
			x->dst = -1;
		}
		k = -1;
	}
	free(done);
	return k;
}

int plan_rebalance(const struct plan_ds *ds, int nds, struct plan_item *it, size_t n,
		   double threshold, int *still_over)
{
	uint64_t used[VDS_MAX_DS];
	bool stuck[VDS_MAX_DS] = { false };
	int moved = 0;

	*still_over = 0;
	if (nds < 0 || nds > VDS_MAX_DS || !(threshold > 0 && threshold <= 1))
		return -EINVAL;
	used_of(ds, nds, used);
	for (size_t i = 0; i < n; i++)
		if (it[i].dst >= 0 && it[i].src >= 0 && it[i].src < nds && it[i].dst < nds) {
			used[it[i].src] -= it[i].bytes < used[it[i].src] ? it[i].bytes : used[it[i].src];
			used[it[i].dst] += it[i].bytes;
		}
	for (;;) {
		int s = -1;

		for (int k = 0; k < nds; k++)	/* the fullest datastore still over */
			if (!stuck[k] && ds[k].size && over(&ds[k], used[k], threshold) &&
			    (s < 0 || plan_fill(used[k], ds[k].size) > plan_fill(used[s], ds[s].size)))
				s = k;
		if (s < 0)
			break;
		int got = drain(ds, nds, used, s, it, n, threshold);
		if (got < 0)
			stuck[s] = true;	/* cannot get under: nothing moves off it */
		else
			moved += got;
	}
	for (int k = 0; k < nds; k++)
		*still_over += ds[k].size && over(&ds[k], used[k], threshold);
	return moved;
}
