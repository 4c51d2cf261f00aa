/* test_model.c - model-based random test.
 *
 * For many seeds, random writes (some past the end, which grow; many rewrite blocks
 * already in the log, in place), reads, discards (whose slots the log reuses after
 * the next commit), resizes both ways, flushes and close/reopen cycles are applied
 * both to an overlay and to a plain in-memory byte array; every read, and the whole
 * image after every reopen, must match byte for byte, and the log's bookkeeping
 * must add up after every flush.  At the end the overlay is merged onto a copy of
 * the base in log order (overlay_log_iter, as the daemon will), onto another copy
 * by overlay_merge and onto the base itself, and all must equal the model; the base
 * must be untouched until then, and overlay_check must find the file healthy.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "helpers.h"

#define SEEDS 120
#define OPS 250
#define MAX_SIZE (768u << 10)

struct model {
	uint8_t *b;
	uint64_t size;
};

static void model_resize(struct model *m, uint64_t size)
{
	if (size > m->size)
		memset(m->b + m->size, 0, size - m->size);
	m->size = size;
}

struct world {
	struct tdir d;
	char base_p[300], diff_p[300];
	int base, diff;
	uint8_t *orig;
	uint64_t base_size;
	struct overlay *ov;
	struct model m;
	uint64_t rng;
	uint32_t bs;
	int base_plain;		/* a buffered fd on the base, for checking it */
};

static uint64_t pick(struct world *w, uint64_t n)
{
	return n ? rng_next(&w->rng) % n : 0;
}

/* Offsets cluster on block edges half the time: that is where bugs live. */
static uint64_t pick_off(struct world *w, uint64_t limit)
{
	if (!limit)
		return 0;
	if (pick(w, 2)) {
		uint64_t b = pick(w, limit / w->bs + 1) * w->bs;
		int64_t o = (int64_t)b + (int64_t)pick(w, 9) - 4;

		if (o >= 0 && (uint64_t)o < limit)
			return (uint64_t)o;
	}
	return pick(w, limit);
}

static void op_write(struct world *w, uint8_t *tmp)
{
	uint64_t off = pick_off(w, w->m.size + w->bs), len = 1 + pick(w, 3 * w->bs);

	if (off + len > MAX_SIZE)
		return;
	rng_fill(&w->rng, tmp, len);
	cr_assert_eq(overlay_write(w->ov, tmp, len, off), (ssize_t)len);
	if (off + len > w->m.size)
		model_resize(&w->m, off + len);
	memcpy(w->m.b + off, tmp, len);
}

static void op_read(struct world *w, uint8_t *tmp)
{
	uint64_t off = pick_off(w, w->m.size + 10), len = pick(w, 3 * w->bs);
	uint64_t want = off >= w->m.size ? 0 : (off + len > w->m.size ? w->m.size - off : len);
	ssize_t n = overlay_read(w->ov, tmp, len, off);

	cr_assert_eq(n, (ssize_t)want, "read %llu@%llu returned %zd", (unsigned long long)len,
		     (unsigned long long)off, n);
	cr_assert(!memcmp(tmp, w->m.b + off, want), "read %llu@%llu differs from the model",
		  (unsigned long long)len, (unsigned long long)off);
}

static void op_discard(struct world *w)
{
	uint64_t off = pick_off(w, w->m.size), len = pick(w, 4 * w->bs);

	cr_assert_eq(overlay_discard(w->ov, off, len), 0);
	if (off < w->m.size)
		memset(w->m.b + off, 0, (off + len > w->m.size ? w->m.size : off + len) - off);
}

static void op_resize(struct world *w)
{
	uint64_t size = pick(w, 4) ? pick_off(w, MAX_SIZE) : w->m.size + pick(w, 3);

	if (size > MAX_SIZE)
		size = MAX_SIZE;
	cr_assert_eq(overlay_resize(w->ov, size), 0);
	model_resize(&w->m, size);
}

/* After a flush: every slot is data, free, or one of the chain's record blocks
 * (few: at most one per commit since the last checkpoint). */
static void check_log(struct world *w)
{
	struct overlay_stats st;

	overlay_stats(w->ov, &st);
	cr_assert_eq(st.version, 2);
	cr_assert_geq(st.log_blocks, st.data_blocks + st.free_blocks);
	cr_assert_leq(st.log_blocks - st.data_blocks - st.free_blocks, 2 * (uint64_t)OPS,
		      "log %llu slots, %llu data, %llu free", (unsigned long long)st.log_blocks,
		      (unsigned long long)st.data_blocks, (unsigned long long)st.free_blocks);
	cr_assert_gt(st.mem_bytes, 0);
}

static void op_flush(struct world *w)
{
	cr_assert_eq(overlay_flush(w->ov), 0);
	check_log(w);
}

static void op_reopen(struct world *w)
{
	cr_assert_eq(overlay_flush(w->ov), 0);
	overlay_close(w->ov);
	w->ov = ov_reopen(w->base, w->diff, "model");
	expect_contents(w->ov, w->m.b, w->m.size);
	check_log(w);
}

/* The daemon's converge, in log order: DATA extents read through the overlay and
 * written, ZERO extents zeroed, then the copy cut to size.  Every DATA block must
 * come exactly once. */
static void merge_in_log_order(struct world *w, int copy)
{
	struct overlay_log_iter *it;
	struct overlay_extent e;
	struct overlay_stats st;
	uint64_t data = 0, zero_seen = 0;
	uint8_t *buf = malloc(MAX_SIZE);
	int r;

	overlay_stats(w->ov, &st);
	cr_assert_eq(overlay_log_iter_begin(w->ov, &it), 0);
	while ((r = overlay_log_iter_next(it, &e)) == 1) {
		cr_assert_leq(e.off + e.len, w->m.size);
		if (e.state == OVERLAY_DATA) {
			cr_assert_eq(zero_seen, 0, "a DATA extent after the ZERO ones");
			cr_assert_eq(overlay_read(w->ov, buf, e.len, e.off), (ssize_t)e.len);
			cr_assert_eq(pwrite(copy, buf, e.len, e.off), (ssize_t)e.len);
			data += (e.len + w->bs - 1) / w->bs;
		} else {
			zero_seen++;
			memset(buf, 0, e.len);
			cr_assert_eq(pwrite(copy, buf, e.len, e.off), (ssize_t)e.len);
		}
	}
	cr_assert_eq(r, 0);
	overlay_log_iter_end(it);
	cr_assert_eq(data, st.data_blocks, "log order gave %llu data blocks, stats say %llu",
		     (unsigned long long)data, (unsigned long long)st.data_blocks);
	cr_assert_eq(ftruncate(copy, (off_t)w->m.size), 0);
	free(buf);
}

static void check_end(struct world *w)
{
	char copy_p[300];
	int copy;

	expect_contents(w->ov, w->m.b, w->m.size);
	cr_assert_eq(overlay_flush(w->ov), 0);
	cr_assert_eq(overlay_check(w->diff, NULL, NULL), 0, "check found problems");
	expect_file(w->base_plain, w->orig, w->base_size);	/* the base never changed */

	tdir_file(&w->d, "copy.img", copy_p, sizeof(copy_p));
	copy = open_new(copy_p);
	cr_assert_eq(pwrite(copy, w->orig, w->base_size, 0), (ssize_t)w->base_size);
	cr_assert_eq(overlay_merge(w->ov, copy), 0);
	expect_file(copy, w->m.b, w->m.size);
	close(copy);

	tdir_file(&w->d, "copy-log.img", copy_p, sizeof(copy_p));
	copy = open_new(copy_p);
	cr_assert_eq(pwrite(copy, w->orig, w->base_size, 0), (ssize_t)w->base_size);
	merge_in_log_order(w, copy);
	expect_file(copy, w->m.b, w->m.size);
	close(copy);

	cr_assert_eq(overlay_merge(w->ov, w->base), 0);	/* cancel: onto the base */
	expect_file(w->base_plain, w->m.b, w->m.size);
	expect_contents(w->ov, w->m.b, w->m.size);	/* still reads the same */
}

/* direct: the overlay gets O_DIRECT fds for base and diff, as the daemon may. */
static void run_seed(uint64_t seed, bool direct)
{
	static const uint32_t sizes[] = { 4096, 4096, 8192, 65536 };
	struct world w = { .rng = seed * 7919 + 1 };
	uint8_t *tmp = malloc(4 * 65536);

	cr_assert_not_null(tmp);
	w.bs = sizes[seed % 4];
	tdir_new(&w.d);
	tdir_file(&w.d, "base.img", w.base_p, sizeof(w.base_p));
	tdir_file(&w.d, "diff", w.diff_p, sizeof(w.diff_p));
	w.base_size = pick(&w, MAX_SIZE / 2);
	w.base_plain = make_base(w.base_p, w.base_size, seed, &w.orig);
	w.base = direct ? open(w.base_p, O_RDWR | O_DIRECT) : dup(w.base_plain);
	w.diff = direct ? open(w.diff_p, O_RDWR | O_CREAT | O_EXCL | O_DIRECT, 0644) :
		open_new(w.diff_p);
	cr_assert(w.base >= 0 && w.diff >= 0);
	w.ov = ov_new(w.base, w.diff, w.bs, "model");
	w.m.b = malloc(MAX_SIZE + 16);
	cr_assert_not_null(w.m.b);
	memcpy(w.m.b, w.orig, w.base_size);
	w.m.size = w.base_size;

	for (int i = 0; i < OPS; i++) {
		uint64_t r = pick(&w, 100);

		if (r < 40)
			op_write(&w, tmp);
		else if (r < 75)
			op_read(&w, tmp);
		else if (r < 87)
			op_discard(&w);
		else if (r < 94)
			op_resize(&w);
		else if (r < 97)
			op_flush(&w);
		else
			op_reopen(&w);
	}
	check_end(&w);
	overlay_close(w.ov);
	close(w.base);
	close(w.base_plain);
	close(w.diff);
	tdir_rm(&w.d);
	free(w.orig);
	free(w.m.b);
	free(tmp);
}

Test(model, random_ops_many_seeds, .timeout = 900)
{
	for (uint64_t seed = 1; seed <= SEEDS; seed++)
		run_seed(seed, false);
}

/* The same with O_DIRECT descriptors: unaligned guest I/O must be bounced and
 * partial writes to data blocks go through aligned read-modify-write. */
Test(model, random_ops_o_direct, .timeout = 900)
{
	for (uint64_t seed = 1001; seed <= 1000 + SEEDS / 4; seed++)
		run_seed(seed, true);
}

/* A logical size smaller than the base: base bytes past it must never reappear,
 * not even after growing again. */
Test(model, create_smaller_than_base_then_grow)
{
	struct tdir d;
	char bp[300], dp[300];
	uint8_t *orig, *z = calloc(1, 20000);
	struct overlay_create_opts o = { .block_size = 4096, .size = 5000 };
	struct overlay *ov;
	int base, diff;

	tdir_new(&d);
	tdir_file(&d, "b", bp, sizeof(bp));
	tdir_file(&d, "d", dp, sizeof(dp));
	base = make_base(bp, 20000, 3, &orig);
	diff = open_new(dp);
	cr_assert_eq(overlay_create(base, diff, &o, &ov), 0);
	cr_assert_eq(overlay_resize(ov, 20000), 0);
	memcpy(z, orig, 5000);
	expect_contents(ov, z, 20000);
	overlay_close(ov);
	ov = ov_reopen(base, diff, NULL);
	expect_contents(ov, z, 20000);
	overlay_close(ov);
	close(base);
	close(diff);
	tdir_rm(&d);
	free(orig);
	free(z);
}
