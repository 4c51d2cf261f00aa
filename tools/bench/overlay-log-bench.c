/* overlay-log-bench.c - one measurement of a differencing file under a heavy
 * writer, for tools/bench/overlay-log-bench.sh, which builds this file twice (against
 * the format-1 library of the pinned commit and against the tree's) and alternates
 * the two builds run by run, so they are compared side by side in one sitting.
 * Only the public API (overlay.h) is used; the log-order read needs the version-2
 * iterator and is compiled in with -DHAVE_LOG_ITER (format 1's file order is the
 * guest order, so both its read rows are its one read).
 *
 * --mode rw: over a sparse base of --size-mb, --threads threads (the FUSE threads
 *   of a guest at queue depth 16) write --ops aligned 4 KiB blocks at random
 *   offsets while a flusher calls overlay_flush every --flush-ms (a guest's
 *   periodic fsync).  Then one last flush (all written data durable), the extent
 *   count (FIEMAP, as `filefrag -v` lists them), a read of everything changed (1
 *   MiB reads, as the daemon's merge does) after dropping the file from the page
 *   cache: format 2 in log order, then in guest order (next_extent, what the daemon
 *   does today), format 1 once in guest order; and the unlink.  One line of
 *   key=value.
 * --mode rss: an overlay of --virt-gb virtual size over a 1 MiB base gets 1 GiB
 *   written, either as 1 MiB writes at random 1 MiB-aligned offsets (clustered) or
 *   as 4 KiB writes at random offsets (scattered) over the whole size, then a
 *   flush, a close and a reopen (what recovery does) and a walk of every changed
 *   extent (what the converge does); prints the process's peak RSS (VmHWM) less
 *   its peak before the overlay existed, and overlay_stats' mem_bytes where the
 *   library has it.  (Memory the library allocates but never touches is not
 *   resident: format 1's map is only fully resident once something writes all
 *   of it, as its open does.)
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"
#include "overlay.h"

const char *bench_name = "overlay-log-bench";

static struct {
	const char *dir, *mode, *pattern;
	uint64_t size, ops, virt;
	unsigned threads, flush_ms;
} cfg = { "/var/tmp", "rw", "clustered", 4096ull << 20, 0, 2048ull << 30, 16, 1000 };

static char base_p[4096], diff_p[4096];

static struct overlay *make(int *base, int *diff, uint64_t base_size, uint64_t size)
{
	struct overlay_create_opts co = { .size = (int64_t)size };
	struct overlay *ov;
	int ret;

	*base = open(base_p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (*base < 0 || ftruncate(*base, (off_t)base_size))
		die(base_p, errno);
	unlink(diff_p);
	*diff = open(diff_p, O_RDWR | O_CREAT | O_EXCL, 0644);
	if (*diff < 0)
		die(diff_p, errno);
	ret = overlay_create(*base, *diff, &co, &ov);
	if (ret)
		die("overlay_create", -ret);
	return ov;
}

/* --- rw ------------------------------------------------------------------- */

static struct overlay *g_ov;
static _Atomic uint64_t g_next;
static atomic_bool g_done;
static double flush_lat[100000];
static unsigned nflush;

static void *writer(void *arg)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1), nb = cfg.size >> 12;
	uint8_t *buf;

	if (posix_memalign((void **)&buf, 4096, 4096))
		die("memory", ENOMEM);
	memset(buf, (int)(uintptr_t)arg + 1, 4096);
	while (atomic_fetch_add(&g_next, 1) < cfg.ops) {
		ssize_t n = overlay_write(g_ov, buf, 4096, rnd(&seed) % nb * 4096);

		if (n != 4096)
			die("overlay_write", n < 0 ? (int)-n : EIO);
	}
	free(buf);
	return NULL;
}

static void *flusher(void *arg)
{
	(void)arg;
	while (!atomic_load(&g_done)) {
		usleep(cfg.flush_ms * 1000);
		double t0 = now();
		int ret = overlay_flush(g_ov);

		if (ret)
			die("overlay_flush", -ret);
		if (nflush < 100000)
			flush_lat[nflush++] = (now() - t0) * 1e3;
	}
	return NULL;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void drop_cache(int fd)
{
	fdatasync(fd);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

/* The merge's reading side: every changed extent read through the overlay in
 * chunks of at most 1 MiB (the daemon's MERGE_CHUNK). */
static void read_extent(const struct overlay_extent *e, uint8_t *buf, uint64_t *bytes)
{
	if (e->state != OVERLAY_DATA)
		return;
	for (uint64_t off = e->off; off < e->off + e->len;) {
		uint64_t end = (off | ((1u << 20) - 1)) + 1;
		size_t n = (size_t)((e->off + e->len < end ? e->off + e->len : end) - off);

		if (overlay_read(g_ov, buf, n, off) != (ssize_t)n)
			die("overlay_read", EIO);
		*bytes += n;
		off += n;
	}
}

/* Everything changed, page cache dropped first, in guest order (next_extent) or in
 * log order (the version-2 iterator; format 1 has none: its file order is the
 * guest order). */
static double read_all(int diff, bool log_order, uint64_t *bytes)
{
	struct overlay_extent e;
	uint64_t cur = 0;
	uint8_t *buf;
	double t0;
#ifdef HAVE_LOG_ITER
	struct overlay_log_iter *it = NULL;
#endif

	if (posix_memalign((void **)&buf, 4096, 1 << 20))
		die("memory", ENOMEM);
	drop_cache(diff);
	t0 = now();
#ifdef HAVE_LOG_ITER
	if (log_order && overlay_log_iter_begin(g_ov, &it))
		die("overlay_log_iter_begin", ENOMEM);
	while (it ? overlay_log_iter_next(it, &e) == 1 : overlay_next_extent(g_ov, &cur, &e) == 1)
		read_extent(&e, buf, bytes);
	overlay_log_iter_end(it);
#else
	(void)log_order;
	while (overlay_next_extent(g_ov, &cur, &e) == 1)
		read_extent(&e, buf, bytes);
#endif
	free(buf);
	return now() - t0;
}

static void mode_rw(void)
{
	pthread_t th[64], fl;
	int base, diff;
	double t0, t_write, t_final, t_guest, t_log, t_unlink;
	uint64_t bg = 0, bl = 0;
	long ext;

	g_ov = make(&base, &diff, cfg.size, cfg.size);
	t0 = now();
	pthread_create(&fl, NULL, flusher, NULL);
	for (unsigned i = 0; i < cfg.threads; i++)
		pthread_create(&th[i], NULL, writer, (void *)(uintptr_t)i);
	for (unsigned i = 0; i < cfg.threads; i++)
		pthread_join(th[i], NULL);
	t_write = now() - t0;
	atomic_store(&g_done, true);
	pthread_join(fl, NULL);
	t0 = now();
	if (overlay_flush(g_ov))
		die("final flush", EIO);
	t_final = now() - t0;
	ext = extents(diff);
	/* The first read after the writes is the one that counts: a second one finds
	 * the file's blocks in the host's cache (the disk is virtual).  So format 2
	 * reads in log order first (what its merge will do), and format 1, which has
	 * only its file order (= guest order), reads once. */
#ifdef HAVE_LOG_ITER
	t_log = read_all(diff, true, &bl);
	t_guest = read_all(diff, false, &bg);
#else
	t_guest = t_log = read_all(diff, false, &bg);
	bl = bg;
#endif
	if (bg != bl)
		die("guest and log order read different amounts", EIO);
	overlay_close(g_ov);
	close(diff);
	close(base);
	t0 = now();
	if (unlink(diff_p))
		die(diff_p, errno);
	t_unlink = now() - t0;
	unlink(base_p);
	qsort(flush_lat, nflush, sizeof(double), cmp_d);
	printf("iops=%.0f final_flush_s=%.3f extents=%ld read_guest_s=%.3f read_log_s=%.3f "
	       "unlink_s=%.3f flush_med_ms=%.1f flush_max_ms=%.1f flushes=%u read_mib=%.0f\n",
	       (double)cfg.ops / t_write, t_final, ext, t_guest, t_log, t_unlink,
	       nflush ? flush_lat[nflush / 2] : 0, nflush ? flush_lat[nflush - 1] : 0, nflush,
	       (double)bg / (1 << 20));
}

/* --- rss ------------------------------------------------------------------ */

static long hwm_kib(void)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmHWM:", 6))
			v = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static void mode_rss(void)
{
	uint8_t *buf;
	uint64_t seed = 12345, written = 0;
	struct overlay_stats st;
	int base, diff, clustered = !strcmp(cfg.pattern, "clustered");
	size_t len = clustered ? 1u << 20 : 4096;
	long before;
	struct overlay_create_opts co = { .size = (int64_t)cfg.virt };
	struct overlay_extent ext;
	uint64_t extents_seen = 0;
	struct overlay *ov;
	int ret;

	if (posix_memalign((void **)&buf, 4096, 1 << 20))
		die("memory", ENOMEM);
	memset(buf, 0x5a, 1 << 20);
	base = open(base_p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (base < 0 || ftruncate(base, 1 << 20))
		die(base_p, errno);
	unlink(diff_p);
	diff = open(diff_p, O_RDWR | O_CREAT | O_EXCL, 0644);
	before = hwm_kib();
	ret = diff < 0 ? -errno : overlay_create(base, diff, &co, &ov);
	if (ret) {	/* format 1 refuses sizes past its map directory */
		printf("rss_kib=refused(%s) mem_kib=-\n", ret == -EFBIG ? "EFBIG" : "error");
		unlink(diff_p);
		unlink(base_p);
		return;
	}
	while (written < (1ull << 30)) {
		uint64_t off = rnd(&seed) % (cfg.virt / len) * len;

		if (overlay_write(ov, buf, len, off) != (ssize_t)len)
			die("overlay_write", EIO);
		written += len;
	}
	if (overlay_flush(ov))
		die("overlay_flush", EIO);
	overlay_close(ov);
	ret = overlay_open(base, diff, NULL, &ov);
	if (ret)
		die("overlay_open", -ret);
	for (uint64_t cur = 0; overlay_next_extent(ov, &cur, &ext) == 1;)
		extents_seen++;
	overlay_stats(ov, &st);
#ifdef HAVE_LOG_ITER
	printf("rss_kib=%ld mem_kib=%llu extents=%llu\n", hwm_kib() - before,
	       (unsigned long long)(st.mem_bytes >> 10), (unsigned long long)extents_seen);
#else
	printf("rss_kib=%ld mem_kib=- extents=%llu\n", hwm_kib() - before,
	       (unsigned long long)extents_seen);
#endif
	overlay_close(ov);
	close(diff);
	close(base);
	unlink(diff_p);
	unlink(base_p);
}

int main(int argc, char **argv)
{
	static const struct option o[] = {
		{ "dir", 1, 0, 'd' }, { "mode", 1, 0, 'm' }, { "size-mb", 1, 0, 's' },
		{ "ops", 1, 0, 'o' }, { "threads", 1, 0, 't' }, { "flush-ms", 1, 0, 'f' },
		{ "virt-gb", 1, 0, 'v' }, { "pattern", 1, 0, 'p' }, { 0 } };
	int c;

	while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
		switch (c) {
		case 'd': cfg.dir = optarg; break;
		case 'm': cfg.mode = optarg; break;
		case 's': cfg.size = strtoull(optarg, NULL, 0) << 20; break;
		case 'o': cfg.ops = strtoull(optarg, NULL, 0); break;
		case 't': cfg.threads = (unsigned)atoi(optarg); break;
		case 'f': cfg.flush_ms = (unsigned)atoi(optarg); break;
		case 'v': cfg.virt = strtoull(optarg, NULL, 0) << 30; break;
		case 'p': cfg.pattern = optarg; break;
		default:
			fprintf(stderr, "usage: overlay-log-bench --mode rw|rss [--dir D] [--size-mb N] "
				"[--ops N] [--threads N] [--flush-ms N] [--virt-gb N] "
				"[--pattern clustered|scattered]\n");
			return 2;
		}
	}
	if (!cfg.ops)
		cfg.ops = cfg.size >> 12;
	if (!cfg.threads || cfg.threads > 64 || !cfg.flush_ms)
		die("arguments", EINVAL);
	snprintf(base_p, sizeof(base_p), "%s/olb-base.%d", cfg.dir, (int)getpid());
	snprintf(diff_p, sizeof(diff_p), "%s/olb-diff.%d", cfg.dir, (int)getpid());
	if (!strcmp(cfg.mode, "rss"))
		mode_rss();
	else
		mode_rw();
	return 0;
}
