/* test_log.c - the log-structured data area of format version 2: where blocks go,
 * how far the file grows, what memory the map takes, and the log-order iterator.
 * Every assertion is about counts the library reports (overlay_stats) or about
 * contents, never about time.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "helpers.h"

#define BS 4096u

struct env {
	struct tdir d;
	char bp[300], dp[300];
	int base, diff;
	uint8_t *orig;
	struct overlay *ov;
};

static void env_init(struct env *e, uint64_t base_size, int64_t size)
{
	struct overlay_create_opts o = { .block_size = BS, .size = size, .base_uuid = "log" };

	tdir_new(&e->d);
	tdir_file(&e->d, "base", e->bp, sizeof(e->bp));
	tdir_file(&e->d, "diff", e->dp, sizeof(e->dp));
	e->base = make_base(e->bp, base_size, 5, &e->orig);
	e->diff = open_new(e->dp);
	cr_assert_eq(overlay_create(e->base, e->diff, &o, &e->ov), 0);
}

static void env_fini(struct env *e)
{
	overlay_close(e->ov);
	close(e->base);
	close(e->diff);
	tdir_rm(&e->d);
	free(e->orig);
}

static struct overlay_stats stats(struct overlay *ov)
{
	struct overlay_stats st;

	overlay_stats(ov, &st);
	return st;
}

/* In place: a block rewritten a thousand times, flushed every ten, keeps its slot. */
Test(log, rewriting_a_block_never_grows_the_log)
{
	struct env e;
	uint8_t buf[BS];

	env_init(&e, 1 << 20, -1);
	for (int i = 0; i < 1000; i++) {
		memset(buf, i, BS);
		cr_assert_eq(overlay_write(e.ov, buf, BS, 5 * BS), BS);
		if (i % 10 == 9)
			cr_assert_eq(overlay_flush(e.ov), 0);
	}
	/* One data slot plus record blocks: each commit after the first writes one,
	 * and checkpoints free them again. */
	cr_assert_leq(stats(e.ov).log_blocks, 80, "log grew to %llu slots",
		      (unsigned long long)stats(e.ov).log_blocks);
	env_fini(&e);
}

/* Discard, flush, write again: the discarded slot comes back after the commit, so
 * the log stays bounded however long the loop runs. */
Test(log, discard_and_rewrite_forever_is_bounded)
{
	struct env e;
	uint8_t buf[2 * BS];
	uint64_t at_100 = 0;

	env_init(&e, 1 << 20, -1);
	memset(buf, 0x77, sizeof(buf));
	for (int i = 0; i < 1000; i++) {
		cr_assert_eq(overlay_write(e.ov, buf, sizeof(buf), 40 * BS), (ssize_t)sizeof(buf));
		cr_assert_eq(overlay_flush(e.ov), 0);
		cr_assert_eq(overlay_discard(e.ov, 40 * BS, sizeof(buf)), 0);
		cr_assert_eq(overlay_flush(e.ov), 0);
		if (i == 100)
			at_100 = stats(e.ov).log_blocks;
	}
	cr_assert_leq(stats(e.ov).log_blocks, at_100, "log kept growing: %llu after 100 rounds, %llu after 1000",
		      (unsigned long long)at_100, (unsigned long long)stats(e.ov).log_blocks);
	cr_assert_eq(stats(e.ov).data_blocks, 0);
	env_fini(&e);
}

/* Blocks land in the log in the order they were first written, whatever their
 * guest offsets; a sequential write stays one run. */
Test(log, log_order_is_write_order)
{
	static const uint64_t order[] = { 70, 3, 250, 4, 100, 0 };
	struct env e;
	struct overlay_log_iter *it;
	struct overlay_extent x;
	uint8_t buf[16 * BS];
	uint64_t cur = 0;
	int n = 0;

	env_init(&e, 1 << 20, -1);
	memset(buf, 0x42, sizeof(buf));
	for (unsigned i = 0; i < 6; i++)
		cr_assert_eq(overlay_write(e.ov, buf, BS, order[i] * BS), BS);
	cr_assert_eq(overlay_write(e.ov, buf, sizeof(buf), 128 * BS), (ssize_t)sizeof(buf));
	cr_assert_eq(overlay_discard(e.ov, 200 * BS, 2 * BS), 0);
	cr_assert_eq(overlay_log_iter_begin(e.ov, &it), 0);
	for (unsigned i = 0; i < 6; i++) {
		cr_assert_eq(overlay_log_iter_next(it, &x), 1);
		cr_assert_eq(x.state, OVERLAY_DATA);
		cr_assert_eq(x.off, order[i] * BS, "extent %u at block %llu, want %llu", i,
			     (unsigned long long)(x.off / BS), (unsigned long long)order[i]);
		cr_assert_eq(x.len, BS);
	}
	cr_assert_eq(overlay_log_iter_next(it, &x), 1);
	cr_assert(x.state == OVERLAY_DATA && x.off == 128 * BS && x.len == sizeof(buf),
		  "the 64 KiB write is not one extent");
	cr_assert_eq(overlay_log_iter_next(it, &x), 1);
	cr_assert(x.state == OVERLAY_ZERO && x.off == 200 * BS && x.len == 2 * BS);
	cr_assert_eq(overlay_log_iter_next(it, &x), 0);
	overlay_log_iter_end(it);
	while (overlay_next_extent(e.ov, &cur, &x) == 1)	/* guest order: blocks 3 and 4 touch */
		n++;
	cr_assert_eq(n, 7);
	env_fini(&e);
}

/* A 16 TiB virtual disk (version 1 refused anything past 15.8 TiB): the map costs
 * what was written, not the size.  Written at both ends, flushed, reopened. */
Test(log, sixteen_tib_disk_memory_follows_writes)
{
	struct env e;
	const uint64_t size = 16ull << 40;
	uint8_t *buf = malloc(1 << 20), *got = malloc(1 << 20);
	struct overlay_stats st;

	env_init(&e, 1 << 20, (int64_t)size);
	cr_assert_lt(stats(e.ov).mem_bytes, 1 << 20, "empty 16 TiB overlay holds %llu bytes",
		     (unsigned long long)stats(e.ov).mem_bytes);
	memset(buf, 0x99, 1 << 20);
	for (uint64_t i = 0; i < 64; i++)	/* 64 MiB spread over the whole disk */
		cr_assert_eq(overlay_write(e.ov, buf, 1 << 20, (size / 64) * i + (size / 64 - (1 << 20))),
			     1 << 20);
	cr_assert_eq(overlay_write(e.ov, buf, 1 << 20, size - (1 << 20)), 1 << 20);
	cr_assert_eq(overlay_flush(e.ov), 0);
	st = stats(e.ov);
	cr_assert_eq(st.data_blocks, 64 * 256);
	cr_assert_lt(st.mem_bytes, 2 << 20, "holds %llu bytes for 64 MiB written",
		     (unsigned long long)st.mem_bytes);
	overlay_close(e.ov);
	e.ov = ov_reopen(e.base, e.diff, "log");
	cr_assert_eq(overlay_read(e.ov, got, 1 << 20, size - (1 << 20)), 1 << 20);
	cr_assert(!memcmp(got, buf, 1 << 20));
	cr_assert_eq(overlay_read(e.ov, got, 4096, size / 2 - (2 << 20)), 4096);
	cr_assert_eq(got[0], 0, "an unwritten block past the base reads 0");
	cr_assert_eq(overlay_check(e.diff, NULL, NULL), 0);
	env_fini(&e);
	free(buf);
	free(got);
}

/* An iteration does not chase a writer: blocks first written after begin land past
 * the log's end at begin (but for a few free slots below it) and are not reported,
 * so a merge slower than the writer still ends. */
Test(log, iteration_ignores_slots_appended_after_begin)
{
	struct env e;
	struct overlay_log_iter *it;
	struct overlay_extent x;
	uint8_t buf[BS];
	uint64_t blocks = 0;

	env_init(&e, 8 << 20, -1);
	memset(buf, 0x17, sizeof(buf));
	for (unsigned i = 0; i < 10; i++)
		cr_assert_eq(overlay_write(e.ov, buf, BS, (uint64_t)i * 2 * BS), BS);
	cr_assert_eq(overlay_log_iter_begin(e.ov, &it), 0);
	for (unsigned i = 0; i < 1000; i++)	/* every other block, none written before */
		cr_assert_eq(overlay_write(e.ov, buf, BS, (uint64_t)(i * 2 + 1) * BS), BS);
	while (overlay_log_iter_next(it, &x) == 1)
		if (x.state == OVERLAY_DATA)
			blocks += x.len / BS;
	overlay_log_iter_end(it);
	cr_assert_geq(blocks, 10);
	cr_assert_lt(blocks, 100, "%llu blocks reported: the iteration followed the writer",
		     (unsigned long long)blocks);
	env_fini(&e);
}
