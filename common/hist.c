/* hist.c - see hist.h. */
#include "hist.h"

#define US	1000ull
#define MS	1000000ull
#define S	1000000000ull

static const uint64_t io_le[] = { 50 * US, 100 * US, 250 * US, 500 * US, 1 * MS, 2500 * US,
	5 * MS, 10 * MS, 25 * MS, 50 * MS, 100 * MS, 250 * MS, 500 * MS, 1 * S, 2500 * MS,
	5 * S, 10 * S };
static const uint64_t pause_le[] = { 100 * US, 250 * US, 500 * US, 1 * MS, 2500 * US, 5 * MS,
	10 * MS, 25 * MS, 50 * MS, 100 * MS, 250 * MS, 500 * MS, 1 * S, 2500 * MS, 5 * S,
	10 * S };

_Static_assert(sizeof(io_le) / sizeof(io_le[0]) <= VDS_HIST_MAX, "io buckets");
_Static_assert(sizeof(pause_le) / sizeof(pause_le[0]) <= VDS_HIST_MAX, "pause buckets");

const struct vds_buckets vds_io_buckets = { io_le, sizeof(io_le) / sizeof(io_le[0]) };
const struct vds_buckets vds_pause_buckets = { pause_le, sizeof(pause_le) / sizeof(pause_le[0]) };

void vds_hist_read(struct vds_hist *h, const struct vds_buckets *b, struct vds_hist_snap *s)
{
	uint64_t run = 0;

	for (unsigned i = 0; i <= b->n; i++) {
		run += atomic_load_explicit(&h->n[i], memory_order_relaxed);
		s->cum[i] = run;
	}
	s->count = run;
	s->sum_ns = atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
}
