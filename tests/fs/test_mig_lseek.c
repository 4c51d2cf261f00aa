/* Unit tests for SEEK_DATA / SEEK_HOLE on a migrating file (fs/mig/mig_io.c,
 * route_lseek): the answer merges the overlay (blocks written are data, blocks
 * discarded are holes) with the base's own layout for the rest, and past the
 * base's size the file reads zeros, a hole.
 *
 * The oracle is the host filesystem: the same layout is made in a plain file (data
 * written where the migrating file has data, nothing where it has holes, the same
 * size) and lseek asked the same question on both, at every block boundary, one
 * byte after it and the last byte of the block. Layouts are random (seeded): the
 * base sparse in places, the overlay writing, discarding, growing the file and
 * writing past the base's end, or shrinking it.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsfix.h"
#include "mig_int.h"
#include "overlay.h"

static struct fsfix fx;

/* On disk (ext4 here), whose holes have the overlay's block size. */
static void setup(void)
{
	fsfix_init(&fx, 1);
}

static void teardown(void)
{
	fsfix_fini(&fx);
}

TestSuite(mig_lseek, .init = setup, .fini = teardown);

#define BS		4096u
#define BASE_BLOCKS	96
#define MAX_BLOCKS	160

enum { HOLE, DATA };

/* The test's own model of the file: one state per block, as it reads. */
struct layout {
	unsigned char blk[MAX_BLOCKS];
	unsigned nblocks;
};

static void fill_blocks(int fd, unsigned from, unsigned n)
{
	uint8_t buf[BS];

	memset(buf, 0x6b, sizeof(buf));
	for (unsigned b = from; b < from + n; b++)
		cr_assert_eq(pwrite(fd, buf, BS, (off_t)b * BS), (ssize_t)BS);
}

/* A file called name with the layout's data blocks written and its size: what
 * the host filesystem says of it is the answer the migrating file must give. */
static int make_oracle(const char *name, const struct layout *l)
{
	char p[PATH_MAX];
	int fd;

	fsfix_path(&fx, 0, name, p, sizeof(p));
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)l->nblocks * BS), 0);
	for (unsigned b = 0; b < l->nblocks; b++)
		if (l->blk[b] == DATA)
			fill_blocks(fd, b, 1);
	cr_assert_eq(fsync(fd), 0);
	return fd;
}

/* Ask both at every block boundary, one byte past it and the block's last byte,
 * and past the end. */
static void compare(struct mig *m, int oracle, const struct layout *l, int round)
{
	static const int whences[] = { SEEK_DATA, SEEK_HOLE };

	for (unsigned b = 0; b <= l->nblocks + 1; b++)
		for (int k = 0; k < 3; k++) {
			off_t off = (off_t)b * BS + (k == 0 ? 0 : k == 1 ? 1 : BS - 1);

			for (int w = 0; w < 2; w++) {
				off_t want = lseek(oracle, off, whences[w]);
				off_t got = mig_route.lseek(m, off, whences[w]);

				if (want < 0)
					want = -errno;
				cr_assert_eq(got, want, "round %d: %s from %lld: %lld, the host says %lld",
					     round, w ? "SEEK_HOLE" : "SEEK_DATA", (long long)off,
					     (long long)got, (long long)want);
			}
		}
}

/* A migration of a new base: BASE_BLOCKS blocks, sparse in runs (seeded). */
static struct mig *mig_over_base(struct layout *l, uint64_t *seed, int round, int *base_fd)
{
	struct overlay_create_opts co = { .size = -1, .base_uuid = "unit" };
	char p[PATH_MAX], name[32];
	struct mig *m;
	int fd;

	snprintf(name, sizeof(name), "base%d", round);
	fsfix_path(&fx, 0, name, p, sizeof(p));
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)BASE_BLOCKS * BS), 0);
	memset(l, HOLE, sizeof(*l));
	l->nblocks = BASE_BLOCKS;
	for (unsigned b = 0; b < BASE_BLOCKS;) {
		unsigned run = 1 + rng_next(seed) % 8;
		bool data = rng_next(seed) % 2;

		if (b + run > BASE_BLOCKS)
			run = BASE_BLOCKS - b;
		if (data) {
			fill_blocks(fd, b, run);
			memset(l->blk + b, DATA, run);
		}
		b += run;
	}
	cr_assert_eq(fsync(fd), 0);

	m = mig_new(fx.g, name, 0, 0, 0);
	cr_assert_not_null(m);
	snprintf(m->name, sizeof(m->name), "mig-%d", round);
	m->base_fd = fd;
	snprintf(name, sizeof(name), "mig-%d.diff", round);
	m->diff_fd = openat(fx.store.ds[0].state_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
			    0600);
	cr_assert_geq(m->diff_fd, 0);
	cr_assert_eq(overlay_create(m->base_fd, m->diff_fd, &co, &m->ov), 0);
	cr_assert_eq(overlay_block_size(m->ov), BS);
	*base_fd = fd;
	return m;
}

static void mig_done(struct mig *m)
{
	overlay_close(m->ov);
	close(m->base_fd);
	close(m->diff_fd);
	mig_free(m);
}

/* Through the route, as the file's writers do; the model follows. */
static void ov_write(struct mig *m, struct layout *l, unsigned b, unsigned n)
{
	uint8_t buf[BS];

	memset(buf, 0x3c, sizeof(buf));
	for (unsigned i = b; i < b + n; i++)
		cr_assert_eq(mig_route.write(m, buf, BS, (off_t)i * BS), (ssize_t)BS);
	if (b > l->nblocks)	/* a write past the end: zeros up to it */
		memset(l->blk + l->nblocks, HOLE, b - l->nblocks);
	memset(l->blk + b, DATA, n);
	if (b + n > l->nblocks)
		l->nblocks = b + n;
}

static void ov_punch(struct mig *m, struct layout *l, unsigned b, unsigned n)
{
	if (b >= l->nblocks)
		return;
	if (b + n > l->nblocks)
		n = l->nblocks - b;
	cr_assert_eq(mig_route.fallocate(m, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					 (off_t)b * BS, (off_t)n * BS), 0);
	memset(l->blk + b, HOLE, n);
}

static void ov_resize(struct mig *m, struct layout *l, unsigned nblocks)
{
	cr_assert_eq(mig_route.truncate(m, (off_t)nblocks * BS), 0);
	if (nblocks > l->nblocks)
		memset(l->blk + l->nblocks, HOLE, nblocks - l->nblocks);
	l->nblocks = nblocks;
}

#define ROUNDS	24

Test(mig_lseek, overlay_and_base_merge_as_the_host_would_answer)
{
	uint64_t seed = 2024;

	for (int round = 0; round < ROUNDS; round++) {
		struct layout l;
		int base, oracle;
		char name[32];
		struct mig *m = mig_over_base(&l, &seed, round, &base);
		unsigned ops = rng_next(&seed) % 12;

		/* Before any change, the base alone answers. */
		snprintf(name, sizeof(name), "oracle%d-0", round);
		oracle = make_oracle(name, &l);
		compare(m, oracle, &l, round);
		close(oracle);

		for (unsigned i = 0; i < ops; i++) {
			unsigned r = rng_next(&seed) % 10;
			unsigned b = rng_next(&seed) % l.nblocks, n = 1 + rng_next(&seed) % 10;

			if (r < 5)
				ov_write(m, &l, b, n);
			else if (r < 8)
				ov_punch(m, &l, b, n);
			else if (r < 9)	/* past the base's end: zeros, then what was written */
				ov_write(m, &l, BASE_BLOCKS + 4 + b % 40, n);
			else
				ov_resize(m, &l, BASE_BLOCKS / 2 + rng_next(&seed) % BASE_BLOCKS);
		}
		snprintf(name, sizeof(name), "oracle%d-1", round);
		oracle = make_oracle(name, &l);
		compare(m, oracle, &l, round);
		close(oracle);
		mig_done(m);
	}
}

/* The edges one at a time: a file that is all hole, all data, grown past its
 * base, and shrunk into it. */
Test(mig_lseek, edges)
{
	uint64_t seed = 7;
	struct layout l;
	int base, oracle;
	struct mig *m = mig_over_base(&l, &seed, 0, &base);

	ov_punch(m, &l, 0, BASE_BLOCKS);			/* all hole */
	oracle = make_oracle("o1", &l);
	compare(m, oracle, &l, 1);
	close(oracle);
	ov_write(m, &l, 0, BASE_BLOCKS);			/* all data */
	oracle = make_oracle("o2", &l);
	compare(m, oracle, &l, 2);
	close(oracle);
	ov_resize(m, &l, BASE_BLOCKS + 20);			/* a hole at the end */
	oracle = make_oracle("o3", &l);
	compare(m, oracle, &l, 3);
	close(oracle);
	ov_resize(m, &l, 10);					/* shrunk into the base */
	oracle = make_oracle("o4", &l);
	compare(m, oracle, &l, 4);
	close(oracle);
	mig_done(m);
}
