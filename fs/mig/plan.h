/* plan.h - where the files of an evacuation or a rebalance go. Pure logic.
 *
 * The planners see only numbers: datastores (size, free bytes, whether they may
 * receive) and items (bytes each takes on its destination, where it is now). They
 * read no directory and move nothing, so every criterion is unit-tested
 * (tests/fs/test_plan.c); fs/mig/evacuate.c feeds them the real datastores and
 * turns their answer into migration requests.
 *
 * Fill is used / size, used = size - free. A destination never goes past the limit
 * it is given (max_fill for an evacuation, the threshold for a rebalance) counting
 * everything planned onto it so far.
 */
#ifndef VDS_PLAN_H
#define VDS_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct plan_ds {
	uint64_t size, avail;	/* bytes, as statvfs says */
	bool dest_ok;		/* may receive (live, not in maintenance, allowed) */
};

struct plan_item {
	uint64_t bytes;		/* what it takes on the destination */
	int src;		/* the datastore holding it */
	int dst;		/* out: where it goes, -1 if it stays */
};

/* Evacuation: every item (all on datastore src) gets a destination other than
 * src: largest item first, each to the allowed datastore with the most free bytes
 * left after what is planned before it, never past max_fill (0-1] of its size.
 * Ties go to the lower index, so a plan is deterministic.
 * 0 if every item has a place; -ENOSPC if some do not (their dst is -1) with
 * *shortfall the bytes of those; -EINVAL for a bad argument. */
int plan_evacuate(const struct plan_ds *ds, int nds, int src, struct plan_item *it, size_t n,
		  double max_fill, uint64_t *shortfall);

/* Rebalance: the fullest datastore above threshold (0-1) first, moves off it until
 * it is under: each time the smallest item that alone brings it under (fewest bytes
 * moved), else its largest one that fits somewhere (largest benefit); to the
 * datastore with the most free bytes it fits on without going above threshold.
 * A datastore that cannot get under that way moves nothing (moves that leave it
 * over would only shuffle data). Items whose dst is already set are taken as
 * planned. Returns how many items were given a destination; *still_over is the
 * number of datastores left above threshold. */
int plan_rebalance(const struct plan_ds *ds, int nds, struct plan_item *it, size_t n,
		   double threshold, int *still_over);

/* Fill of a datastore of size bytes with used bytes, 0-1 (0 for size 0). */
static inline double plan_fill(uint64_t used, uint64_t size)
{
	return size ? (double)used / (double)size : 0;
}

#endif
