/* bench-util.h - the few helpers the stand-alone benchmark programs share (each is
 * built on its own by its script, so they are static inline). */
#ifndef VDS_BENCH_UTIL_H
#define VDS_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

extern const char *bench_name;	/* for messages: the program's name */

static inline double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void die(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", bench_name, what, strerror(err));
	exit(1);
}

/* xorshift64: the same sequence from the same seed, cheap enough per I/O. */
static inline uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* The number of extents FIEMAP reports, i.e. the lines of `filefrag -v`.
 * (filefrag's summary counts only physically discontiguous ones: ext4 lays a
 * scattered file's blocks out physically in logical order, holes included, and
 * then says "3 extents found" for a file whose extent tree has a quarter million,
 * which its unlink has to walk.) */
static inline long extents(int fd)
{
	struct fiemap fm = { .fm_length = FIEMAP_MAX_OFFSET, .fm_flags = FIEMAP_FLAG_SYNC };

	return ioctl(fd, FS_IOC_FIEMAP, &fm) ? -1 : (long)fm.fm_mapped_extents;
}

#endif
