/* clock.h - nanoseconds on a clock, the one way every vdsfs program reads time. */
#ifndef VDS_CLOCK_H
#define VDS_CLOCK_H

#include <stdint.h>
#include <time.h>

/* clock_gettime(c) as nanoseconds: CLOCK_MONOTONIC for durations, CLOCK_REALTIME for
 * what users read as dates. */
static inline uint64_t vds_now_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t vds_ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
}

static inline struct timespec vds_ns_ts(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };

	return ts;
}

#endif
