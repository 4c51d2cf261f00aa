/* test_concurrent.c - many threads at once.
 *
 * Same block: each thread owns a disjoint byte range inside the SAME blocks (all
 * still in the base when the threads start), so every thread's first write races
 * the others' fill-from-base.  No write may be lost: at the end every byte is its
 * owner's last value.  Different blocks: threads write their own blocks, read them
 * back, and one thread flushes all the time.  The result does not depend on how
 * the threads interleave, so the test is deterministic in what it asserts.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "helpers.h"

#define THREADS 8
#define ROUNDS 300

struct shared {
	struct overlay *ov;
	uint32_t bs;
	int id;
	int failed;
	pthread_barrier_t *go;
};

/* Thread i writes bytes [i*slice, (i+1)*slice) of every block, block after block:
 * each block is still in the base when the threads reach it, so each of its
 * partial writes races the others' fill-from-base. */
static void *same_block_writer(void *arg)
{
	struct shared *s = arg;
	uint32_t slice = s->bs / THREADS;
	static _Thread_local uint8_t buf[65536 / THREADS];

	pthread_barrier_wait(s->go);
	for (int blk = 0; blk < ROUNDS; blk++) {
		memset(buf, (uint8_t)(s->id * 16 + blk % 16), slice);
		uint64_t off = (uint64_t)blk * s->bs + (uint64_t)s->id * slice;

		if (overlay_write(s->ov, buf, slice, off) != (ssize_t)slice)
			s->failed = 1;
	}
	return NULL;
}

static void run_same_block(uint32_t bs)
{
	struct tdir d;
	char bp[300], dp[300];
	struct shared sh[THREADS];
	pthread_t t[THREADS];
	pthread_barrier_t go;
	uint64_t size = (uint64_t)ROUNDS * bs;
	uint8_t *got = malloc(size);
	int base, diff;
	struct overlay *ov;

	tdir_new(&d);
	tdir_file(&d, "b", bp, sizeof(bp));
	tdir_file(&d, "d", dp, sizeof(dp));
	base = make_base(bp, size, 9, NULL);
	diff = open_new(dp);
	ov = ov_new(base, diff, bs, NULL);
	pthread_barrier_init(&go, NULL, THREADS);
	for (int i = 0; i < THREADS; i++) {
		sh[i] = (struct shared){ ov, bs, i, 0, &go };
		pthread_create(&t[i], NULL, same_block_writer, &sh[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(sh[i].failed, 0, "thread %d: a write failed", i);
	}
	cr_assert_eq(overlay_read(ov, got, size, 0), (ssize_t)size);
	for (uint64_t i = 0; i < size; i++) {
		int owner = (int)((i % bs) / (bs / THREADS));

		cr_assert_eq(got[i], (uint8_t)(owner * 16 + (i / bs) % 16),
			     "byte %llu lost thread %d's write (got %u)", (unsigned long long)i,
			     owner, got[i]);
	}
	pthread_barrier_destroy(&go);
	overlay_close(ov);
	close(base);
	close(diff);
	tdir_rm(&d);
	free(got);
}

Test(concurrent, writers_share_blocks_4k)
{
	run_same_block(4096);
}

Test(concurrent, writers_share_blocks_64k)
{
	run_same_block(65536);
}

struct own {
	struct overlay *ov;
	int id, failed;
	volatile int *stop;
};

/* Thread i owns blocks i, i+T, i+2T...; writes a pattern then verifies it. */
static void *own_blocks(void *arg)
{
	struct own *o = arg;
	uint8_t buf[4096], back[4096];
	uint64_t rng = (uint64_t)o->id + 1;

	for (int r = 0; r < ROUNDS; r++) {
		uint64_t blk = (rng_next(&rng) % 64) * THREADS + (uint64_t)o->id;
		uint32_t off = (uint32_t)(rng_next(&rng) % 4000);

		memset(buf, (uint8_t)(r + o->id), sizeof(buf));
		if (overlay_write(o->ov, buf, 4096 - off, blk * 4096 + off) != 4096 - off ||
		    overlay_read(o->ov, back, 4096 - off, blk * 4096 + off) != 4096 - off ||
		    memcmp(buf, back, 4096 - off))
			o->failed = 1;
	}
	return NULL;
}

static void *flusher(void *arg)
{
	struct own *o = arg;

	while (!*o->stop)
		if (overlay_flush(o->ov))
			o->failed = 1;
	return NULL;
}

Test(concurrent, writers_own_blocks_with_flushes)
{
	struct tdir d;
	char bp[300], dp[300];
	struct own ow[THREADS + 1];
	pthread_t t[THREADS + 1];
	volatile int stop = 0;
	int base, diff;
	struct overlay *ov;

	tdir_new(&d);
	tdir_file(&d, "b", bp, sizeof(bp));
	tdir_file(&d, "d", dp, sizeof(dp));
	base = make_base(bp, 64 * THREADS * 4096, 5, NULL);
	diff = open_new(dp);
	ov = ov_new(base, diff, 4096, NULL);
	for (int i = 0; i <= THREADS; i++) {
		ow[i] = (struct own){ ov, i, 0, &stop };
		pthread_create(&t[i], NULL, i < THREADS ? own_blocks : flusher, &ow[i]);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	stop = 1;
	pthread_join(t[THREADS], NULL);
	for (int i = 0; i <= THREADS; i++)
		cr_assert_eq(ow[i].failed, 0, "thread %d saw a failure or a mismatch", i);
	/* Everything flushed must survive a reopen and the file must be healthy. */
	cr_assert_eq(overlay_flush(ov), 0);
	cr_assert_eq(overlay_check(diff, NULL, NULL), 0);
	overlay_close(ov);
	close(base);
	close(diff);
	tdir_rm(&d);
}

struct reader {
	struct overlay *ov;
	const uint8_t *want;
	volatile int *stop;
	int failed;
	unsigned reads;
};

/* Reads the stable first 64 KiB (the resizes below never reach it) over and over,
 * always spanning into the region that grows and shrinks. */
static void *stable_reader(void *arg)
{
	struct reader *r = arg;
	static _Thread_local uint8_t buf[256 * 1024];
	uint64_t rng = 99;

	while (!*r->stop || r->reads < 2000) {
		uint64_t off = rng_next(&rng) % 65536;
		ssize_t n = overlay_read(r->ov, buf, sizeof(buf), off);

		if (n < (ssize_t)(65536 - off) || memcmp(buf, r->want + off, 65536 - off))
			r->failed = 1;
		r->reads++;
	}
	return NULL;
}

/* Lockless readers racing resizes: they must never see wrong bytes in the part of
 * the disk the resizes leave alone (and, under ASan, never touch freed memory). */
Test(concurrent, readers_race_resizes)
{
	struct tdir d;
	char bp[300], dp[300];
	uint8_t *orig;
	struct reader rd[4];
	pthread_t t[4];
	volatile int stop = 0;
	int base, diff;
	struct overlay *ov;

	tdir_new(&d);
	tdir_file(&d, "b", bp, sizeof(bp));
	tdir_file(&d, "d", dp, sizeof(dp));
	base = make_base(bp, 1 << 20, 21, &orig);
	diff = open_new(dp);
	ov = ov_new(base, diff, 4096, NULL);
	memset(orig + 1000, 0x77, 3000);
	cr_assert_eq(overlay_write(ov, orig + 1000, 3000, 1000), 3000);
	for (int i = 0; i < 4; i++) {
		rd[i] = (struct reader){ ov, orig, &stop, 0, 0 };
		pthread_create(&t[i], NULL, stable_reader, &rd[i]);
	}
	for (int i = 0; i < 60; i++)
		cr_assert_eq(overlay_resize(ov, i % 2 ? 70000 + (uint64_t)i * 5000 : 3u << 20), 0);
	stop = 1;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(rd[i].failed, 0, "reader %d saw wrong bytes", i);
	}
	overlay_close(ov);
	close(base);
	close(diff);
	tdir_rm(&d);
	free(orig);
}

struct wp {
	struct overlay *ov;
	int whole, failed;
	pthread_barrier_t *go;
};

#define WP_BLOCKS 2000

/* One thread writes each block whole, the other writes bytes [100, 200) of it. */
static void *whole_or_partial(void *arg)
{
	struct wp *w = arg;
	static _Thread_local uint8_t buf[4096];

	memset(buf, w->whole ? 0xee : 0x99, sizeof(buf));
	pthread_barrier_wait(w->go);
	for (uint64_t b = 0; b < WP_BLOCKS; b++) {
		ssize_t want = w->whole ? 4096 : 100;

		if (overlay_write(w->ov, buf, (size_t)want, b * 4096 + (w->whole ? 0 : 100)) != want)
			w->failed = 1;
	}
	return NULL;
}

/* A whole-block write racing a partial write's fill from the base: the base bytes
 * the fill read must never overwrite the whole block's bytes. */
Test(concurrent, whole_block_write_races_partial_fill)
{
	struct tdir d;
	char bp[300], dp[300];
	struct wp w[2];
	pthread_t t[2];
	pthread_barrier_t go;
	uint8_t *got = malloc(WP_BLOCKS * 4096);
	int base, diff;
	struct overlay *ov;

	tdir_new(&d);
	tdir_file(&d, "b", bp, sizeof(bp));
	tdir_file(&d, "d", dp, sizeof(dp));
	base = make_base(bp, WP_BLOCKS * 4096, 31, NULL);
	diff = open_new(dp);
	ov = ov_new(base, diff, 4096, NULL);
	pthread_barrier_init(&go, NULL, 2);
	for (int i = 0; i < 2; i++) {
		w[i] = (struct wp){ ov, i, 0, &go };
		pthread_create(&t[i], NULL, whole_or_partial, &w[i]);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(w[i].failed, 0);
	}
	cr_assert_eq(overlay_read(ov, got, WP_BLOCKS * 4096, 0), WP_BLOCKS * 4096);
	for (uint64_t i = 0; i < WP_BLOCKS * 4096; i++) {
		uint64_t o = i % 4096;

		if (o >= 100 && o < 200)
			cr_assert(got[i] == 0xee || got[i] == 0x99, "byte %llu: %u",
				  (unsigned long long)i, got[i]);
		else
			cr_assert_eq(got[i], 0xee, "byte %llu of a whole-block write lost (%u)",
				     (unsigned long long)i, got[i]);
	}
	pthread_barrier_destroy(&go);
	overlay_close(ov);
	close(base);
	close(diff);
	tdir_rm(&d);
	free(got);
}
