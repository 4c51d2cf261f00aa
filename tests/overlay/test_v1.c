/* test_v1.c - version-1 differencing files (fixed offsets, 2-bit map pages) still
 * open, read, check and merge, and become version 2 at their first commit without
 * moving a byte of data; a crash before that commit's header landed leaves the
 * version-1 file as it was.  The files are made by hand with the version-1
 * encoders, laid out exactly as the version-1 writer did (FORMAT.md appendix A).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "helpers.h"
#include "internal.h"

#define BS 4096u
#define NBLOCKS 600u	/* two map pages would need 16257; one page, partly used */
#define SIZE ((uint64_t)NBLOCKS * BS)

struct v1 {
	struct tdir d;
	char bp[300], dp[300];
	int base, diff;
	uint8_t *model;		/* what the overlay must read */
	uint8_t *orig;
};

/* Block b's state in the hand-made file: every 7th DATA, every 11th ZERO. */
static unsigned state_of(uint64_t b)
{
	return b % 7 == 3 ? OVERLAY_DATA : b % 11 == 5 ? OVERLAY_ZERO : OVERLAY_BASE;
}

static void write_header(int fd, struct ov_meta *m)
{
	uint8_t *slot = calloc(1, OV_HDR_SLOT);

	m->hdr_len = (uint32_t)ov1_header_len(m->npages);
	ov1_header_encode(m, slot);
	cr_assert_eq(pwrite(fd, slot, m->hdr_len, (off_t)((m->gen & 1) * OV_HDR_SLOT)),
		     (ssize_t)m->hdr_len);
	free(slot);
}

static void make_v1(struct v1 *v)
{
	uint64_t words[OV1_PAGE_WORDS] = { 0 }, nd, nz, rng = 99;
	uint8_t page[OV_PAGE_SIZE], blk[BS], dir[1] = { 0 };
	struct ov_meta m = { .version = OV1_VERSION, .block_shift = 12, .size = SIZE,
			     .nblocks = NBLOCKS, .data_off = 1 << 20, .npages = 1,
			     .base_size = SIZE, .dir = dir };

	tdir_new(&v->d);
	tdir_file(&v->d, "base", v->bp, sizeof(v->bp));
	tdir_file(&v->d, "diff", v->dp, sizeof(v->dp));
	v->base = make_base(v->bp, SIZE, 21, &v->orig);
	v->model = malloc(SIZE);
	memcpy(v->model, v->orig, SIZE);
	v->diff = open_new(v->dp);
	strcpy(m.uuid, "v1");
	m.map_off = m.data_off + SIZE;
	cr_assert_eq(ov_base_fingerprint(v->base, false, SIZE, &m.base_fp), 0);
	cr_assert_eq(ftruncate(v->diff, (off_t)(m.map_off + 2 * OV_PAGE_SIZE)), 0);
	write_header(v->diff, &m);	/* generation 0: all base */
	for (uint64_t b = 0; b < NBLOCKS; b++) {
		unsigned st = state_of(b);

		words[b / 32] |= (uint64_t)st << (2 * (b % 32));
		if (st == OVERLAY_ZERO)
			memset(v->model + b * BS, 0, BS);
		if (st != OVERLAY_DATA)
			continue;
		rng_fill(&rng, blk, BS);
		memcpy(v->model + b * BS, blk, BS);
		cr_assert_eq(pwrite(v->diff, blk, BS, (off_t)(m.data_off + b * BS)), BS);
	}
	ov1_page_encode(page, 0, 1, words, &nd, &nz);
	cr_assert_eq(pwrite(v->diff, page, OV_PAGE_SIZE, (off_t)m.map_off), OV_PAGE_SIZE);
	ov1_dir_set(dir, 0, OV1_DIR_SLOT0);
	m.gen = 1;
	m.ndata = nd;
	m.nzero = nz;
	write_header(v->diff, &m);	/* generation 1, in slot 1 */
	cr_assert_eq(fsync(v->diff), 0);
}

static void done(struct v1 *v)
{
	close(v->base);
	close(v->diff);
	tdir_rm(&v->d);
	free(v->model);
	free(v->orig);
}

Test(v1, opens_reads_and_checks)
{
	struct v1 v;
	struct overlay_open_opts o = { .base_uuid = "v1", .flags = OVERLAY_OPEN_RDONLY };
	struct overlay_stats st;
	struct overlay *ov;

	make_v1(&v);
	cr_assert_eq(overlay_check(v.diff, NULL, NULL), 0);
	cr_assert_eq(run_vds_diff("check", v.dp, NULL), 0);
	cr_assert_eq(overlay_open(v.base, v.diff, &o, &ov), 0);
	overlay_stats(ov, &st);
	cr_assert_eq(st.version, 1);
	cr_assert_eq(st.data_blocks, (NBLOCKS + 3) / 7);
	expect_contents(ov, v.model, SIZE);
	overlay_close(ov);
	done(&v);
}

/* Writes to new blocks, an in-place rewrite, a discard; flush upgrades the file. */
Test(v1, first_commit_upgrades_to_version_2)
{
	struct v1 v;
	struct overlay_stats st;
	struct overlay *ov;
	uint8_t buf[3 * BS];
	char copy_p[300];
	int copy;

	make_v1(&v);
	ov = ov_reopen(v.base, v.diff, "v1");
	memset(buf, 0x6b, sizeof(buf));
	cr_assert_eq(overlay_write(ov, buf, sizeof(buf), 100 * BS + 7), (ssize_t)sizeof(buf));
	memcpy(v.model + 100 * BS + 7, buf, sizeof(buf));
	cr_assert_eq(overlay_write(ov, buf, 100, 3 * BS + 50), 100);	/* v1 DATA block */
	memcpy(v.model + 3 * BS + 50, buf, 100);
	cr_assert_eq(overlay_discard(ov, 10 * BS, 2 * BS), 0);	/* blocks 10 (DATA), 11 */
	memset(v.model + 10 * BS, 0, 2 * BS);
	cr_assert_eq(overlay_flush(ov), 0);
	overlay_stats(ov, &st);
	cr_assert_eq(st.version, 2);
	overlay_close(ov);

	ov = ov_reopen(v.base, v.diff, "v1");
	expect_contents(ov, v.model, SIZE);
	cr_assert_eq(overlay_check(v.diff, NULL, NULL), 0);
	tdir_file(&v.d, "copy", copy_p, sizeof(copy_p));
	copy = open_new(copy_p);
	cr_assert_eq(pwrite(copy, v.orig, SIZE, 0), (ssize_t)SIZE);
	cr_assert_eq(overlay_merge(ov, copy), 0);
	expect_file(copy, v.model, SIZE);
	close(copy);
	overlay_close(ov);
	done(&v);
}

/* The upgrading commit's header never landed: the version-1 file is intact (new
 * blocks went to slots version 1 does not use, its map area was reserved). */
Test(v1, upgrade_cut_before_its_header)
{
	struct v1 v;
	uint8_t *slot0 = malloc(OV_HDR_SLOT), *was = malloc(SIZE), buf[5 * BS];
	struct overlay_stats st;
	struct overlay *ov;

	make_v1(&v);
	memcpy(was, v.model, SIZE);
	cr_assert_eq(pread(v.diff, slot0, OV_HDR_SLOT, 0), OV_HDR_SLOT);
	ov = ov_reopen(v.base, v.diff, "v1");
	memset(buf, 0x3c, sizeof(buf));
	for (uint64_t b = 0; b < NBLOCKS; b += 9)	/* never a v1 DATA block */
		if (state_of(b) != OVERLAY_DATA)
			cr_assert_eq(overlay_write(ov, buf, BS, b * BS), BS);
	cr_assert_eq(overlay_flush(ov), 0);	/* generation 2, slot 0 */
	overlay_close(ov);
	cr_assert_eq(pwrite(v.diff, slot0, OV_HDR_SLOT, 0), OV_HDR_SLOT);	/* "never landed" */

	ov = ov_reopen(v.base, v.diff, "v1");
	overlay_stats(ov, &st);
	cr_assert_eq(st.version, 1);
	expect_contents(ov, was, SIZE);
	overlay_close(ov);
	free(slot0);
	free(was);
	done(&v);
}

Test(v1, damaged_map_page_refused)
{
	struct v1 v;
	struct overlay_open_opts o = { .base_uuid = "v1", .flags = OVERLAY_OPEN_RDONLY };
	struct overlay *ov;
	uint8_t x;
	off_t at = (1 << 20) + SIZE + 200;

	make_v1(&v);
	cr_assert_eq(pread(v.diff, &x, 1, at), 1);
	x ^= 0x20;
	cr_assert_eq(pwrite(v.diff, &x, 1, at), 1);
	cr_assert_eq(overlay_open(v.base, v.diff, &o, &ov), -EBADMSG);
	cr_assert_gt(overlay_check(v.diff, NULL, NULL), 0);
	cr_assert_eq(run_vds_diff("check", v.dp, NULL), 1);
	done(&v);
}
