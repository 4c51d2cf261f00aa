/* hist.h - a histogram of durations that many threads feed without a lock.
 *
 * Buckets are fixed at compile time (struct vds_buckets: upper bounds in ns,
 * ascending, as Prometheus's "le": a value lands in the first bucket whose bound
 * it does not exceed, or in the last, unbounded one). Feeding is two relaxed
 * atomic adds, so the I/O path pays no lock and no allocation. A reader's copy
 * (vds_hist_read) may be a moment behind one feeder or another, never torn within
 * one counter; its count is the sum of its buckets, so the copy is consistent with
 * itself.
 */
#ifndef VDS_HIST_H
#define VDS_HIST_H

#include <stdatomic.h>
#include <stdint.h>

#define VDS_HIST_MAX	24	/* bounds at most; one more bucket above them */

struct vds_buckets {
	const uint64_t *le_ns;
	unsigned n;		/* <= VDS_HIST_MAX */
};

/* Zeroed memory is an empty histogram. */
struct vds_hist {
	_Atomic uint64_t n[VDS_HIST_MAX + 1];
	_Atomic uint64_t sum_ns;
};

/* A reader's copy: cumulative counts per bound (cum[b->n] = count), sum. */
struct vds_hist_snap {
	uint64_t cum[VDS_HIST_MAX + 1];
	uint64_t count, sum_ns;
};

/* Disk I/O: 50 us to 10 s. Switch pauses: 100 us to 10 s. */
extern const struct vds_buckets vds_io_buckets, vds_pause_buckets;

static inline void vds_hist_observe(struct vds_hist *h, const struct vds_buckets *b, uint64_t ns)
{
	unsigned i = 0;

	while (i < b->n && ns > b->le_ns[i])
		i++;
	atomic_fetch_add_explicit(&h->n[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

void vds_hist_read(struct vds_hist *h, const struct vds_buckets *b, struct vds_hist_snap *s);

#endif
