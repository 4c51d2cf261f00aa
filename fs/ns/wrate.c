/* wrate.c - see wrate.h. */
#include <time.h>

#include "wrate.h"

#define BYTES_BITS	40			/* 1 TiB in one 4 s period */
#define BYTES_MASK	((1ull << BYTES_BITS) - 1)
#define PERIOD_MASK	((1ull << (64 - BYTES_BITS)) - 1)

static uint64_t coarse_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

void wrate_note_at(struct wrate *w, size_t bytes, uint64_t now_ns)
{
	uint64_t period = (now_ns / WRATE_SLOT_NS) & PERIOD_MASK;
	_Atomic uint64_t *s = &w->slot[period % WRATE_SLOTS];
	uint64_t old = atomic_load_explicit(s, memory_order_relaxed), sum;

	do {
		sum = old >> BYTES_BITS == period ? (old & BYTES_MASK) + bytes : bytes;
		if (sum > BYTES_MASK)
			sum = BYTES_MASK;	/* saturate: an estimate, not an account */
	} while (!atomic_compare_exchange_weak_explicit(s, &old, period << BYTES_BITS | sum,
							memory_order_relaxed, memory_order_relaxed));
}

uint64_t wrate_get_at(struct wrate *w, uint64_t now_ns)
{
	uint64_t period = now_ns / WRATE_SLOT_NS, bytes = 0;
	uint64_t span_ns = (WRATE_SLOTS - 1) * WRATE_SLOT_NS + now_ns % WRATE_SLOT_NS;

	for (uint64_t p = period < WRATE_SLOTS ? 0 : period - (WRATE_SLOTS - 1); p <= period; p++) {
		uint64_t v = atomic_load_explicit(&w->slot[p % WRATE_SLOTS], memory_order_relaxed);

		if (v >> BYTES_BITS == (p & PERIOD_MASK))
			bytes += v & BYTES_MASK;
	}
	return (uint64_t)((double)bytes * 1e9 / (double)span_ns);
}

void wrate_note(struct wrate *w, size_t bytes)
{
	wrate_note_at(w, bytes, coarse_ns());
}

uint64_t wrate_get(struct wrate *w)
{
	return wrate_get_at(w, coarse_ns());
}
