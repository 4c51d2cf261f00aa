/* test_merge.c - merging into a copy and back onto the base.
 *
 * The converging merge runs passes while a writer thread keeps changing blocks;
 * after the writer stops, one last pass must leave the target byte-identical to the
 * overlay: a block written during its merge must be merged again, never lost.
 * Whether a given write lands before or after a given pass does not matter to the
 * assertions, so the test does not depend on timing.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "helpers.h"

#define BLOCKS 512

struct env {
	struct tdir d;
	char bp[300], dp[300], cp[300];
	int base, diff, copy;
	uint8_t *orig;
	uint64_t size;
	struct overlay *ov;
};

static void env_init(struct env *e, uint64_t size)
{
	tdir_new(&e->d);
	tdir_file(&e->d, "base", e->bp, sizeof(e->bp));
	tdir_file(&e->d, "diff", e->dp, sizeof(e->dp));
	tdir_file(&e->d, "copy", e->cp, sizeof(e->cp));
	e->size = size;
	e->base = make_base(e->bp, size, 77, &e->orig);
	e->diff = open_new(e->dp);
	e->copy = open_new(e->cp);
	cr_assert_eq(pwrite(e->copy, e->orig, size, 0), (ssize_t)size);	/* "the copier" */
	e->ov = ov_new(e->base, e->diff, 4096, "m");
}

static void env_fini(struct env *e)
{
	overlay_close(e->ov);
	close(e->base);
	close(e->diff);
	close(e->copy);
	tdir_rm(&e->d);
	free(e->orig);
}

static uint8_t *read_all(struct overlay *ov, uint64_t size)
{
	uint8_t *b = malloc(size);

	cr_assert_eq(overlay_read(ov, b, size, 0), (ssize_t)size);
	return b;
}

struct writer {
	struct overlay *ov;
	volatile int stop;
	int failed;
	unsigned writes;
};

static void *keep_writing(void *arg)
{
	struct writer *w = arg;
	uint64_t rng = 1234;
	uint8_t buf[6000];

	/* At least 2000 operations, then until told to stop. */
	while (!w->stop || w->writes < 2000) {
		uint64_t r = rng_next(&rng);
		uint64_t off = r % (BLOCKS * 4096 - sizeof(buf));
		size_t len = 1 + (r >> 32) % sizeof(buf);

		rng_fill(&rng, buf, len);
		if ((r >> 20) % 8 == 0) {
			if (overlay_discard(w->ov, off, len))
				w->failed = 1;
		} else if (overlay_write(w->ov, buf, len, off) != (ssize_t)len) {
			w->failed = 1;
		}
		w->writes++;
	}
	return NULL;
}

Test(merge, converging_passes_with_a_concurrent_writer, .timeout = 600)
{
	struct env e;
	struct writer w = { 0 };
	struct overlay_merge *m;
	pthread_t t;
	uint64_t left = 0;
	int passes = 0;

	env_init(&e, BLOCKS * 4096);
	w.ov = e.ov;
	cr_assert_eq(overlay_merge_begin(e.ov, e.copy, &m), 0);
	pthread_create(&t, NULL, keep_writing, &w);
	for (; passes < 20 || w.writes < 2000; passes++)
		cr_assert_geq(overlay_merge_pass(m, &left), 0);
	w.stop = 1;
	pthread_join(t, NULL);
	cr_assert_eq(w.failed, 0);
	/* I/O is quiet now: the last pass leaves nothing behind. */
	cr_assert_geq(overlay_merge_pass(m, &left), 0);
	cr_assert_eq(left, 0);
	overlay_merge_end(m);

	uint8_t *want = read_all(e.ov, e.size);

	expect_file(e.copy, want, e.size);
	expect_file(e.base, e.orig, e.size);	/* the base is untouched by all this */
	free(want);
	env_fini(&e);
}

Test(merge, pass_reports_remaining_and_copies_only_dirty)
{
	struct env e;
	struct overlay_merge *m;
	uint8_t buf[4096];
	uint64_t left = 99;

	env_init(&e, BLOCKS * 4096);
	memset(buf, 1, sizeof(buf));
	cr_assert_eq(overlay_write(e.ov, buf, 4096, 0), 4096);
	cr_assert_eq(overlay_write(e.ov, buf, 4096, 8192), 4096);
	cr_assert_eq(overlay_merge_begin(e.ov, e.copy, &m), 0);
	cr_assert_eq(overlay_merge_pass(m, &left), 2);
	cr_assert_eq(left, 0);
	cr_assert_eq(overlay_write(e.ov, buf, 100, 8192 + 5), 100);
	cr_assert_eq(overlay_discard(e.ov, 40960, 4096), 0);
	cr_assert_eq(overlay_merge_pass(m, &left), 2);	/* the two changed blocks only */
	cr_assert_eq(overlay_merge_pass(m, &left), 0);
	cr_assert_eq(overlay_merge_begin(e.ov, e.copy, &m) , -EBUSY);
	overlay_merge_end(m);

	uint8_t *want = read_all(e.ov, e.size);

	expect_file(e.copy, want, e.size);
	free(want);
	env_fini(&e);
}

/* Cancel: merge back onto the base.  Afterwards the base is the overlay's image,
 * and the file still opens against the changed base (BASE_DIRTY). */
Test(merge, onto_the_base_and_reopen)
{
	struct env e;
	struct overlay_stats st;
	uint8_t buf[10000];

	env_init(&e, BLOCKS * 4096);
	memset(buf, 3, sizeof(buf));
	cr_assert_eq(overlay_write(e.ov, buf, sizeof(buf), 12345), (ssize_t)sizeof(buf));
	cr_assert_eq(overlay_resize(e.ov, e.size - 5000), 0);
	cr_assert_eq(overlay_flush(e.ov), 0);

	uint8_t *want = read_all(e.ov, e.size - 5000);
	int base_rw = open_rw(e.bp);

	cr_assert_eq(overlay_merge(e.ov, base_rw), 0);
	expect_file(e.base, want, e.size - 5000);
	overlay_stats(e.ov, &st);
	cr_assert(st.flags & 1, "BASE_DIRTY not recorded");
	overlay_close(e.ov);
	e.ov = ov_reopen(e.base, e.diff, "m");
	expect_contents(e.ov, want, e.size - 5000);
	close(base_rw);
	free(want);
	env_fini(&e);
}

/* vds-diff merge does the same offline. */
Test(merge, vds_diff_merge_onto_copy)
{
	struct env e;
	uint8_t buf[5000];

	env_init(&e, BLOCKS * 4096);
	memset(buf, 9, sizeof(buf));
	cr_assert_eq(overlay_write(e.ov, buf, sizeof(buf), 777), (ssize_t)sizeof(buf));
	cr_assert_eq(overlay_discard(e.ov, 65536, 3 * 4096), 0);
	cr_assert_eq(overlay_flush(e.ov), 0);

	uint8_t *want = read_all(e.ov, e.size);

	cr_assert_eq(run_vds_diff("merge", "--uuid", "m", e.bp, e.dp, e.cp, NULL), 0);
	expect_file(e.copy, want, e.size);
	cr_assert_eq(run_vds_diff("merge", e.bp, e.dp, e.cp, NULL), 1, "wrong uuid accepted");
	free(want);
	env_fini(&e);
}

struct resizer {
	struct overlay *ov;
	uint64_t size;
	int failed;
};

static void *keep_resizing(void *arg)
{
	struct resizer *r = arg;

	for (int i = 0; i < 20; i++)
		if (overlay_resize(r->ov, r->size + (uint64_t)(i + 1) * 4096))
			r->failed = 1;
	return NULL;
}

/* A pass over a large disk lets resizes in between (it drops io_lock every 256 MiB
 * of 4 KiB blocks) and still ends with a target equal to the overlay. */
Test(merge, long_pass_lets_resize_in, .timeout = 600)
{
	struct tdir d;
	char bp[300], dp[300], cp[300];
	const uint64_t size = 600ull << 20;
	struct resizer rz;
	struct overlay_merge *m;
	pthread_t t;
	uint8_t buf[8192], a[8192], b[8192];
	uint64_t left;
	int base, diff, copy;
	struct overlay *ov;

	tdir_new(&d);
	tdir_file(&d, "base", bp, sizeof(bp));
	tdir_file(&d, "diff", dp, sizeof(dp));
	tdir_file(&d, "copy", cp, sizeof(cp));
	base = open_new(bp);
	copy = open_new(cp);
	cr_assert_eq(ftruncate(base, (off_t)size), 0);	/* sparse: all zeros */
	cr_assert_eq(ftruncate(copy, (off_t)size), 0);
	diff = open_new(dp);
	ov = ov_new(base, diff, 4096, NULL);
	memset(buf, 0x3c, sizeof(buf));
	for (uint64_t off = 12345; off < size - sizeof(buf); off += 17ull << 20)
		cr_assert_eq(overlay_write(ov, buf, sizeof(buf), off), (ssize_t)sizeof(buf));
	cr_assert_eq(overlay_merge_begin(ov, copy, &m), 0);
	rz = (struct resizer){ ov, size, 0 };
	pthread_create(&t, NULL, keep_resizing, &rz);
	for (int i = 0; i < 3; i++)
		cr_assert_geq(overlay_merge_pass(m, &left), 0);
	pthread_join(t, NULL);
	cr_assert_eq(rz.failed, 0);
	cr_assert_geq(overlay_merge_pass(m, &left), 0);
	cr_assert_eq(left, 0);
	overlay_merge_end(m);
	for (uint64_t off = 12345; off < size - sizeof(buf); off += 17ull << 20) {
		cr_assert_eq(overlay_read(ov, a, sizeof(a), off), (ssize_t)sizeof(a));
		cr_assert_eq(pread(copy, b, sizeof(b), (off_t)off), (ssize_t)sizeof(b));
		cr_assert(!memcmp(a, b, sizeof(a)), "target differs at %llu", (unsigned long long)off);
	}
	struct stat st;

	cr_assert_eq(fstat(copy, &st), 0);
	cr_assert_eq((uint64_t)st.st_size, size + 20 * 4096);
	overlay_close(ov);
	close(base);
	close(diff);
	close(copy);
	tdir_rm(&d);
}
