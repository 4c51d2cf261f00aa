/* iostat.h - what the files on each datastore were asked to do: reads, writes and
 * flushes (fsync, fdatasync), their bytes, errors and latency.
 *
 * Fed on the I/O path by ns/vfile.c, one call per request, with the file's
 * datastore as it was while the request held the file's gate (a migrating file
 * counts on its source until the switch). Lock-free: relaxed atomic adds into
 * counters and histograms (common/hist.h) that the metrics read whenever they
 * like. Latency is from the request's arrival at vfile to its end, a wait for a
 * switch's pause included: what the guest waited for.
 */
#ifndef VDS_IOSTAT_H
#define VDS_IOSTAT_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "hist.h"

enum ds_op { DS_READ, DS_WRITE, DS_FLUSH, DS_NOPS };

struct ds_iostat {
	struct {
		_Atomic uint64_t bytes;		/* read or written (0 for flushes) */
		_Atomic uint64_t errors;	/* requests that failed */
		struct vds_hist lat;		/* every request, failed ones too */
	} op[DS_NOPS];
};

/* One request of op that began at t0_ns (CLOCK_MONOTONIC) and returned res: bytes
 * moved (>= 0) or -errno. */
void ds_io_note(struct ds_iostat *st, enum ds_op op, ssize_t res, uint64_t t0_ns);

/* "read", "write", "flush". */
const char *ds_op_name(enum ds_op op);

#endif
