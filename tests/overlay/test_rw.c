/* test_rw.c - read/write semantics at block edges, discard, grow and shrink,
 * statistics and the extent iterator, and O_DIRECT descriptors. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "helpers.h"

struct fx {
	struct tdir d;
	int base, diff;
	uint8_t *orig, *want;
	uint64_t size;
	struct overlay *ov;
};

static void fx_init(struct fx *f, uint64_t size, uint32_t bs, int extra_flags)
{
	char bp[300], dp[300];

	tdir_new(&f->d);
	tdir_file(&f->d, "base.img", bp, sizeof(bp));
	tdir_file(&f->d, "diff", dp, sizeof(dp));
	f->size = size;
	f->base = make_base(bp, size, 42, &f->orig);
	if (extra_flags) {
		close(f->base);
		f->base = open(bp, O_RDWR | extra_flags);
		f->diff = open(dp, O_RDWR | O_CREAT | O_EXCL | extra_flags, 0644);
		cr_assert_geq(f->base, 0);
		cr_assert_geq(f->diff, 0);
	} else {
		f->diff = open_new(dp);
	}
	f->want = malloc(4 * size + 65536);
	memcpy(f->want, f->orig, size);
	f->ov = ov_new(f->base, f->diff, bs, NULL);
}

static void fx_fini(struct fx *f)
{
	overlay_close(f->ov);
	close(f->base);
	close(f->diff);
	tdir_rm(&f->d);
	free(f->orig);
	free(f->want);
}

static void put(struct fx *f, uint64_t off, size_t len, uint8_t val)
{
	uint8_t *b = malloc(len);

	memset(b, val, len);
	cr_assert_eq(overlay_write(f->ov, b, len, off), (ssize_t)len);
	if (off + len > f->size) {
		memset(f->want + f->size, 0, off + len - f->size);
		f->size = off + len;
	}
	memcpy(f->want + off, b, len);
	free(b);
}

Test(rw, unaligned_writes_across_block_edges)
{
	struct fx f;

	fx_init(&f, 100000, 4096, 0);
	put(&f, 4095, 2, 0xa1);		/* one byte each side of an edge */
	put(&f, 8191, 4098, 0xa2);	/* spans three blocks, partial at both ends */
	put(&f, 3, 1, 0xa3);		/* partial write into the first block */
	put(&f, 20000, 12288, 0xa4);	/* unaligned start, whole block in the middle */
	put(&f, 99999, 1, 0xa5);	/* last byte of a partial last block */
	expect_contents(f.ov, f.want, f.size);
	cr_assert_eq(overlay_flush(f.ov), 0);
	overlay_close(f.ov);
	f.ov = ov_reopen(f.base, f.diff, NULL);
	expect_contents(f.ov, f.want, f.size);
	expect_file(f.base, f.orig, 100000);	/* the base is never written */
	fx_fini(&f);
}

Test(rw, partial_write_fills_from_base_then_from_zero)
{
	struct fx f;

	fx_init(&f, 65536, 16384, 0);
	put(&f, 100, 10, 0xb1);			/* block 0 filled from the base */
	cr_assert_eq(overlay_discard(f.ov, 16384, 16384), 0);	/* block 1 -> zero */
	memset(f.want + 16384, 0, 16384);
	put(&f, 16384 + 500, 20, 0xb2);		/* filled from zeros, not the base */
	expect_contents(f.ov, f.want, f.size);
	fx_fini(&f);
}

Test(rw, discard_whole_and_partial)
{
	struct fx f;
	struct overlay_stats st;

	fx_init(&f, 10 * 4096 + 123, 4096, 0);
	put(&f, 0, 3 * 4096, 0xc1);
	cr_assert_eq(overlay_discard(f.ov, 2000, 4096 * 3), 0);	/* partial, whole, whole... */
	memset(f.want + 2000, 0, 4096 * 3);
	cr_assert_eq(overlay_discard(f.ov, 10 * 4096, 1000), 0);	/* the short last block */
	memset(f.want + 10 * 4096, 0, 123);
	expect_contents(f.ov, f.want, f.size);
	overlay_stats(f.ov, &st);
	/* blocks 1, 2 and the short last block 10 are zero; 0 (partly zeroed, was data)
	 * and 3 (partly zeroed, was base) hold data */
	cr_assert_eq(st.zero_blocks, 3, "zero blocks %llu", (unsigned long long)st.zero_blocks);
	cr_assert_eq(st.data_blocks, 2, "data blocks %llu", (unsigned long long)st.data_blocks);
	fx_fini(&f);
}

Test(rw, write_past_end_grows_and_shrink_hides_old_bytes)
{
	struct fx f;

	fx_init(&f, 10000, 4096, 0);
	put(&f, 20000, 100, 0xd1);			/* grows to 20100 */
	expect_contents(f.ov, f.want, f.size);
	cr_assert_eq(overlay_resize(f.ov, 5000), 0);	/* base bytes 5000.. must vanish */
	f.size = 5000;
	cr_assert_eq(overlay_resize(f.ov, 30000), 0);
	memset(f.want + 5000, 0, 25000);
	f.size = 30000;
	expect_contents(f.ov, f.want, f.size);
	overlay_close(f.ov);
	f.ov = ov_reopen(f.base, f.diff, NULL);
	expect_contents(f.ov, f.want, f.size);
	fx_fini(&f);
}

Test(rw, stats_and_extents)
{
	struct fx f;
	struct overlay_stats st;
	struct overlay_extent e;
	uint64_t cur = 0;

	fx_init(&f, 64 * 4096, 4096, 0);
	put(&f, 4096, 2 * 4096, 1);		/* data blocks 1-2 */
	cr_assert_eq(overlay_discard(f.ov, 10 * 4096, 4096), 0);	/* zero block 10 */
	put(&f, 11 * 4096, 1, 2);		/* data block 11 */
	overlay_stats(f.ov, &st);
	cr_assert_eq(st.data_blocks, 3);
	cr_assert_eq(st.zero_blocks, 1);
	cr_assert_eq(st.data_bytes, 3 * 4096);
	cr_assert_eq(overlay_next_extent(f.ov, &cur, &e), 1);
	cr_assert(e.off == 4096 && e.len == 8192 && e.state == OVERLAY_DATA);
	cr_assert_eq(overlay_next_extent(f.ov, &cur, &e), 1);
	cr_assert(e.off == 10 * 4096 && e.len == 4096 && e.state == OVERLAY_ZERO);
	cr_assert_eq(overlay_next_extent(f.ov, &cur, &e), 1);
	cr_assert(e.off == 11 * 4096 && e.len == 4096 && e.state == OVERLAY_DATA);
	cr_assert_eq(overlay_next_extent(f.ov, &cur, &e), 0);
	fx_fini(&f);
}

/* The caller's O_DIRECT fds must work, with unaligned caller buffers and offsets. */
Test(rw, o_direct_descriptors)
{
	struct fx f;

	fx_init(&f, 256 * 1024, 4096, O_DIRECT);
	put(&f, 4096, 8192, 0xe1);		/* aligned */
	put(&f, 12345, 777, 0xe2);		/* unaligned, partial blocks */
	put(&f, 12400, 10, 0xe3);		/* partial write into a DATA block */
	put(&f, 255 * 1024, 2048, 0xe4);
	expect_contents(f.ov, f.want, f.size);
	cr_assert_eq(overlay_flush(f.ov), 0);
	overlay_close(f.ov);
	f.ov = ov_reopen(f.base, f.diff, NULL);
	expect_contents(f.ov, f.want, f.size);
	cr_assert_eq(overlay_check(f.diff, NULL, NULL), 0);
	fx_fini(&f);
}
