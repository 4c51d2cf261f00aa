/* wrate.h - a file's recent write rate, cheap enough for every write.
 *
 * Eight slots of four seconds each: a slot holds the bytes written during one
 * four-second period, tagged with that period's number in one 64-bit word, so a
 * note is a clock read and one compare-and-swap, with no lock and nothing lost to a
 * race between writers. The rate is the bytes of the current period and the seven
 * before it, over the time they span (28 s and the part of the current period gone
 * by): a burst counts for half a minute, a file written at a steady rate shows that
 * rate. A file that began writing less than 28 s ago shows less than its rate.
 *
 * Each file node carries one (node.h); the write path notes what it wrote:
 *     wrate_note(&h->vf->node->wrate, n);      in op_write, fs/fuse/ops_io.c, for n > 0
 * The space check of a migration reads it (mig_space.c).
 */
#ifndef VDS_WRATE_H
#define VDS_WRATE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define WRATE_SLOTS	8
#define WRATE_SLOT_NS	4000000000ull

struct wrate {
	_Atomic uint64_t slot[WRATE_SLOTS];	/* period number << 40 | bytes */
};

/* Count bytes written now (CLOCK_MONOTONIC_COARSE). */
void wrate_note(struct wrate *w, size_t bytes);
/* Bytes per second over the last half minute. */
uint64_t wrate_get(struct wrate *w);

/* The same at a given time (ns on CLOCK_MONOTONIC_COARSE): for the tests. */
void wrate_note_at(struct wrate *w, size_t bytes, uint64_t now_ns);
uint64_t wrate_get_at(struct wrate *w, uint64_t now_ns);

#endif
