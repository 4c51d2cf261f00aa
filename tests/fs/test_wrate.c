/* Unit tests for fs/ns/wrate.c: the recent write rate a migration's space check uses. */
#include <criterion/criterion.h>
#include <pthread.h>

#include "wrate.h"

#define S	1000000000ull		/* one second in ns */
#define MiB	(1ull << 20)
#define T0	(1000 * S)		/* any time well after boot */

Test(wrate, nothing_written_is_zero)
{
	struct wrate w = { 0 };

	cr_assert_eq(wrate_get_at(&w, T0), 0);
}

Test(wrate, steady_writer_shows_its_rate)
{
	struct wrate w = { 0 };

	for (uint64_t t = 0; t < 60; t++)
		wrate_note_at(&w, 12 * MiB, T0 + t * S);
	uint64_t r = wrate_get_at(&w, T0 + 60 * S - 1);

	cr_assert(r > 11 * MiB && r < 13 * MiB, "rate %llu", (unsigned long long)r);
}

Test(wrate, a_burst_ages_out_after_half_a_minute)
{
	struct wrate w = { 0 };

	wrate_note_at(&w, 600 * MiB, T0);
	cr_assert_gt(wrate_get_at(&w, T0 + 10 * S), 10 * MiB);
	cr_assert_eq(wrate_get_at(&w, T0 + 40 * S), 0);
}

Test(wrate, a_slot_reused_a_lap_later_starts_from_zero)
{
	struct wrate w = { 0 };

	wrate_note_at(&w, 100 * MiB, T0);
	wrate_note_at(&w, 4 * MiB, T0 + WRATE_SLOTS * WRATE_SLOT_NS);	/* same slot */
	uint64_t r = wrate_get_at(&w, T0 + WRATE_SLOTS * WRATE_SLOT_NS);

	cr_assert_lt(r, 1 * MiB, "rate %llu", (unsigned long long)r);
}

struct burst { struct wrate *w; };

static void *writer(void *arg)
{
	struct burst *b = arg;

	for (int i = 0; i < 100000; i++)
		wrate_note_at(b->w, 4096, T0 + 2 * S);
	return NULL;
}

Test(wrate, concurrent_notes_are_all_counted)
{
	struct wrate w = { 0 };
	struct burst b = { &w };
	pthread_t t[4];

	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, writer, &b);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	/* 4 x 100000 x 4 KiB over the 28 s and 2 s the window spans at T0 + 2 s */
	uint64_t want = 4ull * 100000 * 4096 * S / ((WRATE_SLOTS - 1) * WRATE_SLOT_NS + 2 * S);

	cr_assert_eq(wrate_get_at(&w, T0 + 2 * S), want);
}
