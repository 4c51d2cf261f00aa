/* overlay-bench.c - the overlay against the plain file, side by side in one run.
 *
 * Workloads (each on the plain file and through an overlay, same offsets):
 *   4k randwrite       aligned 4 KiB writes at random offsets, fresh overlay
 *                      (every write lands on a block still in the base: worst case)
 *   4k randread base   aligned 4 KiB reads, overlay holds nothing (all base blocks)
 *   4k randread diff   aligned 4 KiB reads, overlay holds every block
 *   1M seqwrite        1 MiB writes front to back, fresh overlay
 *   1M seqread         1 MiB reads front to back, all base blocks
 *   4k randread base, 4 threads   the same as 4k randread base from 4 threads
 *   control: 1M seqwr new file    no overlay at all: 1M seqwrite into a new sparse
 *                      file instead of the existing image, i.e. the filesystem's
 *                      cost of first writes into holes, which the overlay always
 *                      pays (its differencing file starts empty)
 * Each workload runs --runs times.  Within a run plain and overlay work in
 * alternating batches (500 random ops or 16 MiB), each side timed separately, so
 * load from other processes hits both sides alike: the machine this was written on
 * is shared.  The table shows median MB/s and the ratio overlay/plain of the medians.
 * --direct opens every file O_DIRECT (what qemu cache=none does); without it the
 * files sit in the page cache and the benchmark measures the overlay's CPU path.
 * Write workloads end with fsync / overlay_flush inside the timed region only with
 * --sync.  Every measurement starts after sync(2) so the writeback of one workload
 * does not throttle the next.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "overlay.h"
#include "size.h"

struct cfg {
	const char *dir;
	uint64_t size;
	unsigned runs, ops, bs;
	int direct, sync, only;
};

static struct cfg cfg = { "/tmp", 256ull << 20, 5, 20000, 0, 0, 0, -1 };
static char base_p[4096], plain_p[4096], diff_p[4096], full_p[4096];
static uint8_t *buf;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "overlay-bench: %s: %s\n", what, strerror(err));
	exit(1);
}

static int xopen(const char *p, int fl)
{
	int fd = open(p, fl | (cfg.direct ? O_DIRECT : 0), 0644);

	if (fd < 0)
		die(p, errno);
	return fd;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void fill_file(const char *p, uint64_t seed)
{
	int fd = xopen(p, O_RDWR | O_CREAT | O_TRUNC);

	for (uint64_t off = 0; off < cfg.size; off += 1 << 20) {
		for (size_t i = 0; i < (1 << 20) / 8; i++)
			((uint64_t *)buf)[i] = rnd(&seed);
		if (pwrite(fd, buf, 1 << 20, (off_t)off) != 1 << 20)
			die(p, errno);
	}
	fsync(fd);
	close(fd);
}

/* Read a file once so every side starts from the same page-cache state (in the
 * first run the freshly written base was measurably slower than the plain file). */
static void warm(const char *p)
{
	int fd = xopen(p, O_RDONLY);

	while (read(fd, buf, 1 << 20) > 0)
		;
	close(fd);
}

/* An I/O target: the plain fd, or an overlay. */
struct tgt {
	int fd;
	struct overlay *ov;
	int base, diff;
};

static void tgt_io(struct tgt *t, int wr, size_t len, uint64_t off)
{
	ssize_t n;

	if (t->ov)
		n = wr ? overlay_write(t->ov, buf, len, off) : overlay_read(t->ov, buf, len, off);
	else
		n = wr ? pwrite(t->fd, buf, len, (off_t)off) : pread(t->fd, buf, len, (off_t)off);
	if (n != (ssize_t)len)
		die("I/O", n < 0 ? (t->ov ? (int)-n : errno) : EIO);
}

static void tgt_sync(struct tgt *t)
{
	if (t->ov)
		overlay_flush(t->ov);
	else
		fsync(t->fd);
}

static struct tgt open_plain(void)
{
	return (struct tgt){ .fd = xopen(plain_p, O_RDWR), .base = -1, .diff = -1 };
}

/* A fresh overlay over the base (new empty differencing file). */
static struct tgt open_overlay(const char *dp, int fresh)
{
	struct overlay_create_opts co = { .block_size = cfg.bs, .size = -1 };
	struct tgt t = { .fd = -1 };
	int ret;

	t.base = xopen(base_p, O_RDONLY);
	if (fresh) {
		t.diff = xopen(dp, O_RDWR | O_CREAT | O_EXCL);
		ret = overlay_create(t.base, t.diff, &co, &t.ov);
	} else {
		t.diff = xopen(dp, O_RDWR);
		ret = overlay_open(t.base, t.diff, NULL, &t.ov);
	}
	if (ret)
		die("overlay", -ret);
	return t;
}

static void tgt_close(struct tgt *t)
{
	overlay_close(t->ov);
	for (int *fd = (int[]){ t->fd, t->base, t->diff }, i = 0; i < 3; i++)
		if (fd[i] >= 0)
			close(fd[i]);
}

enum wl { RANDWRITE, RANDREAD_BASE, RANDREAD_DIFF, SEQWRITE, SEQREAD, MT_READ_BASE,
	  CTRL_SEQWRITE, NWL };
static const char *wl_name[NWL] = {
	"4k randwrite", "4k randread base", "4k randread diff", "1M seqwrite", "1M seqread",
	"4k randread base, 4 threads", "control: 1M seqwr new file",
};

static int is_write(enum wl w)
{
	return w == RANDWRITE || w == SEQWRITE || w == CTRL_SEQWRITE;
}

#define MT_THREADS 4

struct mt_arg {
	struct tgt *t;
	uint64_t seed;
	unsigned n;
};

/* One reader thread of MT_READ_BASE: the overlay's read path takes no lock, so it
 * should scale like pread does. */
static void *mt_reader(void *arg)
{
	struct mt_arg *a = arg;
	uint8_t *b;

	if (posix_memalign((void **)&b, 4096, 4096))
		die("memory", ENOMEM);
	for (unsigned i = 0; i < a->n; i++) {
		uint64_t off = rnd(&a->seed) % (cfg.size / 4096) * 4096;
		ssize_t r = a->t->ov ? overlay_read(a->t->ov, b, 4096, off) :
			pread(a->t->fd, b, 4096, (off_t)off);

		if (r != 4096)
			die("read", EIO);
	}
	free(b);
	return NULL;
}

static double mt_batch(struct tgt *t, uint64_t seed, unsigned n)
{
	pthread_t th[MT_THREADS];
	struct mt_arg a[MT_THREADS];
	double t0 = now();

	for (int i = 0; i < MT_THREADS; i++) {
		a[i] = (struct mt_arg){ t, seed + (uint64_t)i * 7919, n / MT_THREADS };
		pthread_create(&th[i], NULL, mt_reader, &a[i]);
	}
	for (int i = 0; i < MT_THREADS; i++)
		pthread_join(th[i], NULL);
	return now() - t0;
}

/* One batch of a workload on one target: ops from a private copy of the offset
 * generator, so both targets see exactly the same offsets.  Returns seconds. */
static double batch(struct tgt *t, enum wl w, uint64_t seed, uint64_t *pos, unsigned n)
{
	int wr = is_write(w);

	if (w == MT_READ_BASE)
		return mt_batch(t, seed, n);
	double t0 = now();

	for (unsigned i = 0; i < n; i++) {
		if (w <= RANDREAD_DIFF) {
			tgt_io(t, wr, 4096, rnd(&seed) % (cfg.size / 4096) * 4096);
		} else {
			tgt_io(t, wr, 1 << 20, *pos);
			*pos += 1 << 20;
		}
	}
	return now() - t0;
}

/* Plain and overlay side by side: batches alternate between the two (and which
 * goes first), so background load on the machine hits both alike.  Fills
 * mbs[0] (plain) and mbs[1] (overlay) with MB/s. */
static void run_pair(enum wl w, unsigned run, double mbs[2])
{
	char dp[4200];
	struct tgt t[2];
	double secs[2] = { 0, 0 };
	uint64_t seed = 0x9e3779b97f4a7c15ull * (run + 1) + w, pos[2] = { 0, 0 }, bytes;
	int wr = is_write(w);
	int rnd_io = w <= RANDREAD_DIFF || w == MT_READ_BASE;
	unsigned per = w == MT_READ_BASE ? 20000 : rnd_io ? 500 : 16;	/* ops per batch */
	unsigned total = rnd_io ? cfg.ops : (unsigned)(cfg.size >> 20);

	/* A new file name per measurement: deleting a big synced file right before a
	 * measurement makes the filesystem busy freeing (and discarding) its blocks. */
	snprintf(dp, sizeof(dp), "%s.%u.%d", diff_p, run, (int)w);
	t[0] = open_plain();
	if (w == CTRL_SEQWRITE) {	/* no overlay: a new sparse plain file */
		t[1] = (struct tgt){ .fd = xopen(dp, O_RDWR | O_CREAT | O_TRUNC), .base = -1,
				     .diff = -1 };
		if (ftruncate(t[1].fd, (off_t)cfg.size))
			die(dp, errno);
	} else {
		t[1] = w == RANDREAD_DIFF ? open_overlay(full_p, 0) : open_overlay(dp, 1);
	}
	sync();	/* start with no dirty pages from the previous measurement */
	for (unsigned done = 0, b = 0; done < total; done += per, b++) {
		unsigned n = total - done < per ? total - done : per;

		for (int k = 0; k < 2; k++) {
			int who = (int)((b + run + (unsigned)k) % 2);

			secs[who] += batch(&t[who], w, seed, &pos[who], n);
		}
		for (unsigned i = 0; i < n && rnd_io; i++)
			rnd(&seed);
	}
	for (int k = 0; wr && cfg.sync && k < 2; k++) {
		double t0 = now();

		tgt_sync(&t[k]);
		secs[k] += now() - t0;
	}
	bytes = rnd_io ? (uint64_t)total / (w == MT_READ_BASE ? MT_THREADS : 1) *
		(w == MT_READ_BASE ? MT_THREADS : 1) * 4096 : (uint64_t)total << 20;
	for (int k = 0; k < 2; k++) {
		mbs[k] = (double)bytes / secs[k] / 1e6;
		tgt_close(&t[k]);
	}
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The overlay whose every block is in the differencing file, for RANDREAD_DIFF. */
static void prepare_full(void)
{
	struct tgt t = open_overlay(full_p, 1);

	for (uint64_t off = 0; off < cfg.size; off += 1 << 20)
		tgt_io(&t, 1, 1 << 20, off);
	overlay_flush(t.ov);
	tgt_close(&t);
}

static void parse_block_size(const char *arg)
{
	char err[256];
	uint64_t v;

	if (vds_size_parse("--block-size", arg, UINT32_MAX, &v, err, sizeof(err))) {
		fprintf(stderr, "overlay-bench: %s\n", err);
		exit(2);
	}
	cfg.bs = (unsigned)v;
}

static void parse(int argc, char **argv)
{
	static const struct option o[] = {
		{ "dir", 1, 0, 'd' }, { "size-mb", 1, 0, 's' }, { "runs", 1, 0, 'r' },
		{ "ops", 1, 0, 'o' }, { "block-size", 1, 0, 'b' }, { "direct", 0, 0, 'D' },
		{ "sync", 0, 0, 'S' }, { "only", 1, 0, 'w' }, { "help", 0, 0, 'h' }, { 0 } };
	int c;

	while ((c = getopt_long(argc, argv, "d:s:r:o:b:DSw:h", o, NULL)) != -1) {
		switch (c) {
		case 'd': cfg.dir = optarg; break;
		case 's': cfg.size = strtoull(optarg, NULL, 0) << 20; break;
		case 'r': cfg.runs = (unsigned)atoi(optarg); break;
		case 'o': cfg.ops = (unsigned)atoi(optarg); break;
		case 'b': parse_block_size(optarg); break;
		case 'D': cfg.direct = 1; break;
		case 'S': cfg.sync = 1; break;
		case 'w': cfg.only = atoi(optarg); break;
		default:
			printf("usage: overlay-bench [--dir D] [--size-mb N] [--runs N] [--ops N]\n"
			       "                     [--block-size B] [--direct] [--sync] [--only W]\n");
			exit(c == 'h' ? 0 : 2);
		}
	}
	if (!cfg.runs || cfg.runs > 64 || cfg.size < (1 << 20))
		die("arguments", EINVAL);
}

int main(int argc, char **argv)
{
	static double res[NWL][2][64];

	parse(argc, argv);
	if (posix_memalign((void **)&buf, 4096, 1 << 20))
		die("memory", ENOMEM);
	snprintf(base_p, sizeof(base_p), "%s/ovb-base.img", cfg.dir);
	snprintf(plain_p, sizeof(plain_p), "%s/ovb-plain.img", cfg.dir);
	snprintf(diff_p, sizeof(diff_p), "%s/ovb-diff.vdsdiff", cfg.dir);
	snprintf(full_p, sizeof(full_p), "%s/ovb-full.vdsdiff", cfg.dir);
	fill_file(base_p, 1);
	fill_file(plain_p, 1);
	prepare_full();
	warm(base_p);
	warm(plain_p);
	warm(full_p);
	for (unsigned r = 0; r < cfg.runs; r++)
		for (int w = 0; w < NWL; w++) {
			double mbs[2];

			if (cfg.only >= 0 && cfg.only != w)
				continue;
			run_pair((enum wl)w, r, mbs);
			for (int k = 0; k < 2; k++)
				res[w][k][r] = mbs[k];
			if (getenv("OVB_VERBOSE"))
				fprintf(stderr, "run %u %-27s plain %8.1f overlay %8.1f MB/s\n", r,
					wl_name[w], mbs[0], mbs[1]);
		}
	printf("overlay-bench: %llu MiB files in %s, %s%s, block size %u, %u runs, %u random ops\n",
	       (unsigned long long)(cfg.size >> 20), cfg.dir, cfg.direct ? "O_DIRECT" : "buffered",
	       cfg.sync ? " + sync" : "", cfg.bs ? cfg.bs : OVERLAY_DEFAULT_BLOCK_SIZE, cfg.runs,
	       cfg.ops);
	printf("| %-27s | %12s | %12s | %6s |\n", "workload", "plain MB/s", "overlay MB/s", "ratio");
	printf("|-----------------------------|--------------|--------------|--------|\n");
	for (int w = 0; w < NWL; w++) {
		if (cfg.only >= 0 && cfg.only != w)
			continue;
		double p = median(res[w][0], cfg.runs), o = median(res[w][1], cfg.runs);

		printf("| %-27s | %12.1f | %12.1f | %6.2f |\n", wl_name[w], p, o, o / p);
	}
	unlink(base_p);
	unlink(plain_p);
	unlink(full_p);
	for (unsigned r = 0; r < cfg.runs; r++)
		for (int w = 0; w < NWL; w++) {
			char dp[4200];

			snprintf(dp, sizeof(dp), "%s.%u.%d", diff_p, r, w);
			unlink(dp);
		}
	return 0;
}
