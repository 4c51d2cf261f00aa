/* iostat.c - see iostat.h. */
#include "clock.h"
#include "iostat.h"

void ds_io_note(struct ds_iostat *st, enum ds_op op, ssize_t res, uint64_t t0_ns)
{
	uint64_t ns = vds_now_ns(CLOCK_MONOTONIC) - t0_ns;

	if (res < 0)
		atomic_fetch_add_explicit(&st->op[op].errors, 1, memory_order_relaxed);
	else if (res > 0)
		atomic_fetch_add_explicit(&st->op[op].bytes, (uint64_t)res, memory_order_relaxed);
	vds_hist_observe(&st->op[op].lat, &vds_io_buckets, ns);
}

const char *ds_op_name(enum ds_op op)
{
	static const char *const names[DS_NOPS] = { "read", "write", "flush" };

	return op < DS_NOPS ? names[op] : "?";
}
