/* test_copy.c -- the copy engine on real files.
 *
 * Sources are random sparse files built from a seeded PRNG: odd sizes,
 * empty files, files much larger than the engine's buffers (the tests shrink
 * chunk_size and queue_depth so "much larger" stays small), data pieces at
 * unaligned offsets. Each copy is compared byte for byte, and every 4 KiB
 * aligned hole of the source must still be a hole in the copy. Runs in the
 * TMPDIR or /var/tmp (O_DIRECT capable on ext4/xfs), on
 * /dev/shm (tmpfs) and with O_DIRECT turned off. Interruptions are
 * triggered from progress callbacks, never from timers.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "copier.h"
#include "internal.h"

static char dir[256];
static int dfd = -1;

static void mkdir_in(const char *base)
{
	snprintf(dir, sizeof(dir), "%s/copier-test-XXXXXX", base);
	cr_assert_not_null(mkdtemp(dir), "mkdtemp in %s: %s", base, strerror(errno));
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(dfd, 0);
}

static void setup_tmp(void)
{
	const char *t = getenv("TMPDIR");

	mkdir_in(t && *t ? t : "/var/tmp");
}

static void teardown(void)
{
	char cmd[300];

	if (dfd >= 0)
		close(dfd);
	dfd = -1;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (dir[0] && system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
}

/* ---- building sources ---- */

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fill(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(rnd() >> 24) | 1;  /* never zero: data != hole */
}

static void write_at(int fd, uint64_t off, size_t n)
{
	unsigned char *b = malloc(n ? n : 1);

	fill(b, n);
	cr_assert_eq(pwrite(fd, b, n, (off_t)off), (ssize_t)n);
	free(b);
}

/* A file of `size` bytes with `pieces` random data runs, the rest holes. */
static int make_sparse(const char *name, uint64_t size, int pieces, size_t maxpiece)
{
	int fd = openat(dfd, name, O_RDWR | O_CREAT | O_TRUNC, 0644);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	for (int i = 0; i < pieces && size; i++) {
		uint64_t off = rnd() % size;
		size_t n = 1 + rnd() % maxpiece;

		if (off + n > size)
			n = (size_t)(size - off);
		write_at(fd, off, n);
	}
	return fd;
}

static int make_full(const char *name, uint64_t size)
{
	int fd = openat(dfd, name, O_RDWR | O_CREAT | O_TRUNC, 0644);

	cr_assert_geq(fd, 0);
	for (uint64_t off = 0; off < size; off += 1 << 20)
		write_at(fd, off, size - off < (1 << 20) ? size - off : 1 << 20);
	return fd;
}

/* ---- checking copies ---- */

static void assert_same_bytes(int a, int b)
{
	struct stat sa, sb;
	unsigned char x[65536], y[65536];
	off_t off = 0;
	ssize_t n, m;

	cr_assert_eq(fstat(a, &sa), 0);
	cr_assert_eq(fstat(b, &sb), 0);
	cr_assert_eq(sa.st_size, sb.st_size, "size %lld != %lld",
		     (long long)sa.st_size, (long long)sb.st_size);
	do {
		n = pread(a, x, sizeof(x), off);
		m = pread(b, y, sizeof(y), off);
		cr_assert_eq(n, m);
		cr_assert(n >= 0 && memcmp(x, y, (size_t)n) == 0, "content differs near %lld", (long long)off);
		off += n;
	} while (n > 0);
}

/* Every whole 4 KiB block inside a source hole is a hole in the copy. */
static void assert_holes_kept(int src, int dst)
{
	struct stat st;
	off_t h = 0, d, hs, he, got;

	cr_assert_eq(fstat(src, &st), 0);
	while (h < st.st_size) {
		h = lseek(src, h, SEEK_HOLE);
		if (h < 0 || h >= st.st_size)
			break;
		d = lseek(src, h, SEEK_DATA);
		if (d < 0)
			d = st.st_size;
		hs = (off_t)align_up((uint64_t)h, 4096);
		he = (off_t)align_down((uint64_t)d, 4096);
		if (he > hs) {
			got = lseek(dst, hs, SEEK_DATA);
			cr_assert(got < 0 || got >= he, "copy has data at %lld inside source hole [%lld, %lld)",
				  (long long)got, (long long)hs, (long long)he);
		}
		h = d;
	}
}

static struct copier_opts small_opts(void)
{
	/* 64 KiB x 4 buffers: every test file beyond 256 KiB is "much larger" */
	return (struct copier_opts){ .chunk_size = 65536, .queue_depth = 4,
				     .space_margin = 1 };
}

static void copy_and_check(int src, const char *dst, const struct copier_opts *o,
			   struct copier_result *res)
{
	int r = copier_copy(src, dfd, dst, o, res), fd;

	cr_assert_eq(r, 0, "copy to %s: %d %s", dst, r, res->msg);
	fd = openat(dfd, dst, O_RDONLY);
	cr_assert_geq(fd, 0);
	assert_same_bytes(src, fd);
	assert_holes_kept(src, fd);
	close(fd);
}

/* expect_direct: O_DIRECT must have been used (ext4/xfs); tmpfs has it
 * only since Linux 6.6, so there nothing is asserted either way. */
static void random_sparse_suite(bool expect_direct)
{
	static const uint64_t sizes[] = { 0, 1, 511, 4095, 4096, 4097, 65537,
					  (1 << 20) + 123, (5 << 20) + 7, (24 << 20) + 4093 };
	struct copier_opts o = small_opts();
	struct copier_result res;
	char name[64];

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		snprintf(name, sizeof(name), "src%zu", i);
		int fd = make_sparse(name, sizes[i], 1 + (int)(rnd() % 12), 300000);

		snprintf(name, sizeof(name), "dst%zu", i);
		copy_and_check(fd, name, &o, &res);
		cr_assert_eq(res.size, sizes[i]);
		if (sizes[i] >= 4096 && expect_direct)
			cr_assert(res.flags & COPIER_USED_DIRECT, "O_DIRECT expected here");
		close(fd);
	}
}

TestSuite(copy, .init = setup_tmp, .fini = teardown, .timeout = 60);

Test(copy, random_sparse_files)
{
	random_sparse_suite(true);
}

static void setup_shm(void)
{
	struct statfs fs;

	if (statfs("/dev/shm", &fs) || fs.f_type != 0x01021994 /* TMPFS_MAGIC */)
		cr_skip_test("no tmpfs at /dev/shm");
	mkdir_in("/dev/shm");
}

Test(copy_tmpfs, random_sparse_files_fallback, .init = setup_shm, .fini = teardown, .timeout = 60)
{
	random_sparse_suite(false);
}

/* The buffered path on a filesystem that does O_DIRECT, too. */
Test(copy, random_sparse_files_no_direct)
{
	struct copier_opts o = small_opts();
	struct copier_result res;
	int fd = make_sparse("s", (9 << 20) + 4321, 20, 500000);

	o.no_direct = true;
	copy_and_check(fd, "d", &o, &res);
	cr_assert_not(res.flags & COPIER_USED_DIRECT);
	close(fd);
}

Test(copy, full_file_default_buffers_and_buffered_mode)
{
	struct copier_opts o = { .space_margin = 1 };
	struct copier_result res;
	int fd = make_full("full", (9 << 20) + 1);

	copy_and_check(fd, "d1", &o, &res);
	cr_assert_eq(res.data_bytes, (9u << 20) + 1);
	o.no_direct = true;
	copy_and_check(fd, "d2", &o, &res);
	cr_assert_not(res.flags & COPIER_USED_DIRECT);
	close(fd);
}

Test(copy, file_starting_and_ending_with_holes)
{
	struct copier_opts o = small_opts();
	struct copier_result res;
	int fd = openat(dfd, "s", O_RDWR | O_CREAT, 0644);

	cr_assert_eq(ftruncate(fd, 50 << 20), 0);
	write_at(fd, 20 << 20, 3 << 20);
	copy_and_check(fd, "d", &o, &res);
	cr_assert_eq(res.data_bytes, 3u << 20, "data %llu", (unsigned long long)res.data_bytes);
	cr_assert_leq(res.copied, (3u << 20) + 8192, "holes must not be copied");
	close(fd);
}

Test(copy, metadata_preserved_and_source_untouched)
{
	struct copier_opts o = small_opts();
	struct copier_result res;
	struct timespec ts[2] = { { 1000000000, 123456789 }, { 1200000000, 987654321 } };
	struct stat s0, s1, d;
	uint64_t sum0, sum1;
	int fd = make_sparse("s", (3 << 20) + 5, 5, 200000), dst;

	if (geteuid() == 0)
		cr_assert_eq(fchown(fd, 1234, 5678), 0);
	cr_assert_eq(fchmod(fd, 02751), 0);  /* after chown, which clears set-id */
	cr_assert_eq(futimens(fd, ts), 0);
	cr_assert_eq(fstat(fd, &s0), 0);
	cr_assert_eq(copier_checksum(fd, &sum0), 0);
	cr_assert_eq(copier_copy(fd, dfd, "d", &o, &res), 0, "%s", res.msg);
	cr_assert_eq(fstatat(dfd, "d", &d, 0), 0);  /* before reading moves atime */
	dst = openat(dfd, "d", O_RDONLY);
	assert_same_bytes(fd, dst);
	cr_assert_eq(fstat(fd, &s1), 0);
	cr_assert_eq(copier_checksum(fd, &sum1), 0);
	cr_assert_eq(sum0, sum1, "source content changed");
	cr_assert_eq(s1.st_mtim.tv_sec, s0.st_mtim.tv_sec);
	cr_assert_eq(s1.st_mtim.tv_nsec, s0.st_mtim.tv_nsec);
	cr_assert_eq(d.st_mode & 07777, 02751, "mode %o", d.st_mode & 07777);
	cr_assert_eq(d.st_mtim.tv_sec, ts[1].tv_sec);
	cr_assert_eq(d.st_mtim.tv_nsec, ts[1].tv_nsec);
	cr_assert_eq(d.st_atim.tv_sec, ts[0].tv_sec);
	if (geteuid() == 0) {
		cr_assert_eq(d.st_uid, 1234);
		cr_assert_eq(d.st_gid, 5678);
	}
	close(dst);
	close(fd);
}

Test(copy, verify_matches_and_checksum_catches_corruption)
{
	struct copier_opts o = small_opts();
	struct copier_result res;
	uint64_t a, b;
	unsigned char c;
	int fd = make_sparse("s", (7 << 20) + 77, 9, 400000), dst;

	o.verify = true;
	copy_and_check(fd, "d", &o, &res);
	cr_assert_eq(copier_checksum(fd, &a), 0);
	cr_assert_eq(res.checksum, a);
	dst = openat(dfd, "d", O_RDWR);
	cr_assert_eq(pread(dst, &c, 1, 4 << 20), 1);
	c ^= 0x80;  /* flip one bit, in data or in a hole */
	cr_assert_eq(pwrite(dst, &c, 1, 4 << 20), 1);
	cr_assert_eq(copier_checksum(dst, &b), 0);
	cr_assert_neq(a, b, "a changed byte must change the checksum");
	close(dst);
	close(fd);
}

Test(copy, hole_and_written_zeros_checksum_alike)
{
	int a = openat(dfd, "a", O_RDWR | O_CREAT, 0644);
	int b = openat(dfd, "b", O_RDWR | O_CREAT, 0644);
	static unsigned char zero[1 << 20];
	uint64_t x, y;

	cr_assert_eq(ftruncate(a, 3 << 20), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(pwrite(b, zero, sizeof(zero), (off_t)i << 20), (ssize_t)sizeof(zero));
	cr_assert_eq(copier_checksum(a, &x), 0);
	cr_assert_eq(copier_checksum(b, &y), 0);
	cr_assert_eq(x, y);
	close(a);
	close(b);
}

/* ---- interruption and resume ---- */

struct stopper {
	atomic_bool cancel;
	uint64_t stop_after;    /* cancel once checkpointed >= this */
	uint64_t max_done;
};

static void stop_at_checkpoint(void *arg, const struct copier_progress *p)
{
	struct stopper *st = arg;

	if (p->done > st->max_done)
		st->max_done = p->done;
	if (p->checkpointed >= st->stop_after)
		atomic_store(&st->cancel, true);
}

static int interrupted_copy(int src, uint64_t stop_after, bool keep)
{
	struct stopper st = { .stop_after = stop_after };
	struct copier_opts o = small_opts();
	struct copier_result res;
	int r;

	o.checkpoint_every = 1 << 20;
	o.keep_partial = keep;
	o.progress = stop_at_checkpoint;
	o.progress_arg = &st;
	o.cancel = &st.cancel;
	o.resume = true;
	r = copier_copy(src, dfd, "d", &o, &res);
	cr_assert_eq(r, -ECANCELED, "got %d (%s)", r, res.msg);
	cr_assert_str_eq(res.msg, "copy cancelled: Operation canceled");
	return r;
}

Test(copy, resume_continues_from_checkpoint)
{
	struct copier_opts o = small_opts();
	struct copier_result res;
	struct ckpt ck;
	struct stat st;
	int fd = make_full("s", (16 << 20) + 3);

	interrupted_copy(fd, 4 << 20, true);
	cr_assert_eq(ckpt_read(dfd, "d", &ck), 0, "checkpoint kept");
	cr_assert_geq(ck.done_off, 4u << 20);
	cr_assert_eq(fstatat(dfd, "d", &st, 0), 0);
	cr_assert_eq(st.st_mode & 07777, 0600, "a partial copy must not look finished");
	o.resume = true;
	copy_and_check(fd, "d", &o, &res);
	cr_assert_eq(res.resumed_from, ck.done_off);
	cr_assert_leq(res.copied, (16u << 20) + 4096 - ck.done_off, "resumed copy redid work");
	cr_assert_neq(ckpt_read(dfd, "d", &ck), 0, "checkpoint removed after success");
	close(fd);
}

Test(copy, resume_refused_when_source_changed)
{
	struct copier_opts o = small_opts();
	struct copier_result res;
	int fd = make_full("s", 8 << 20);

	interrupted_copy(fd, 2 << 20, true);
	write_at(fd, 0, 4096);  /* new content, new mtime */
	o.resume = true;
	copy_and_check(fd, "d", &o, &res);
	cr_assert_eq(res.resumed_from, 0);
	close(fd);
}

Test(copy, cancel_without_keep_removes_partial)
{
	int fd = make_full("s", 8 << 20);

	interrupted_copy(fd, 1 << 20, false);
	cr_assert_neq(faccessat(dfd, "d", F_OK, 0), 0);
	cr_assert_neq(faccessat(dfd, "d.ckpt", F_OK, 0), 0);
	close(fd);
}

static void unlink_dst_once(void *arg, const struct copier_progress *p)
{
	bool *done = arg;

	(void)p;
	if (!*done)
		unlinkat(dfd, "d", 0);
	*done = true;
}

/* The destination's name disappears mid-copy: the copy must not succeed. */
Test(copy, vanished_destination_fails)
{
	struct copier_opts o = small_opts();
	struct copier_result res;
	bool done = false;
	int fd = make_full("s", 4 << 20), r;

	o.progress = unlink_dst_once;
	o.progress_arg = &done;
	o.progress_ms = 1;
	o.checkpoint_every = 1 << 20;  /* a checkpoint forces a progress call */
	r = copier_copy(fd, dfd, "d", &o, &res);
	cr_assert(done, "progress callback never ran");
	cr_assert_eq(r, -ENOENT, "got %d: %s", r, res.msg);
	cr_assert(strstr(res.msg, "vanished"), "msg: %s", res.msg);
	cr_assert_neq(faccessat(dfd, "d.ckpt", F_OK, 0), 0, "checkpoint left behind");
	close(fd);
}

Test(copy, free_space_precheck_refuses_clearly)
{
	struct copier_opts o = small_opts();
	struct copier_result res;
	int fd = make_full("s", 1 << 20), r;

	o.space_margin = 1ull << 60;
	r = copier_copy(fd, dfd, "d", &o, &res);
	cr_assert_eq(r, -ENOSPC);
	cr_assert(strstr(res.msg, "not enough free space on destination"), "msg: %s", res.msg);
	cr_assert_neq(faccessat(dfd, "d", F_OK, 0), 0, "refused copy created a file");
	close(fd);
}

Test(copy, not_a_regular_file)
{
	struct copier_result res;

	cr_assert_eq(copier_copy(dfd, dfd, "d", NULL, &res), -EINVAL);
	cr_assert_str_eq(res.msg, "source is not a regular file: Invalid argument");
}

Test(copy, caller_fd_offset_untouched)
{
	int fd = make_sparse("s", 2 << 20, 3, 100000);
	struct copier_result res;
	struct copier_opts o = small_opts();

	cr_assert_eq(lseek(fd, 12345, SEEK_SET), 12345);
	cr_assert_eq(copier_copy(fd, dfd, "d", &o, &res), 0);
	cr_assert_eq(lseek(fd, 0, SEEK_CUR), 12345);
	close(fd);
}

/* ---- rate limiter arithmetic, on a fake clock ---- */

Test(limiter, debt_turns_into_wait, .init = NULL, .fini = NULL)
{
	struct copier_limiter *l = copier_limiter_new(10 << 20);  /* 10 MiB/s */
	uint64_t t = copier_now_ns() + 1000000000ull, w;

	/* a full bucket holds the burst (1 MiB here): 2 MiB leave 0.1 s of debt */
	w = limiter_reserve_at(l, 2 << 20, t);
	cr_assert(w > 99000000 && w < 101000000, "wait %llu", (unsigned long long)w);
	/* 0.1 s later the debt is paid; 5 MiB more cost 0.5 s */
	w = limiter_reserve_at(l, 5 << 20, t + 100000000);
	cr_assert(w > 499000000 && w < 501000000, "wait %llu", (unsigned long long)w);
	/* idling 10 s saves at most the burst (1 MiB here), not 100 MiB */
	w = limiter_reserve_at(l, 3 << 20, t + 10600000000ull);
	cr_assert(w > 199000000 && w < 201000000, "wait %llu", (unsigned long long)w);
	copier_limiter_set_rate(l, 0);
	cr_assert_eq(limiter_reserve_at(l, 1 << 30, t + 20000000000ull), 0);
	copier_limiter_free(l);
}
