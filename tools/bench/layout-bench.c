/* layout-bench.c - where should a differencing file put 4 KiB random writes?
 *
 * The layouts format 2 chose between, measured on plain files with no overlay code
 * in the way (tools/bench/layout-bench.sh runs them side by side):
 *   fixed        block b at b * 4 KiB (format 1)
 *   log          each block at the next free slot when first written, rewrites in
 *                place (format 2)
 *   cluster:N    allocation units of N bytes taken in first-touch order, 4 KiB
 *                blocks at their offset inside the unit (the "larger
 *                allocation units with 4 KiB tracking")
 *   fill:N       the same, but the first write to a unit writes all of it (the
 *                rest as zeros, as a real overlay would copy it from the base), so
 *                the file has no holes
 * --threads threads write --ops aligned 4 KiB blocks at random over --size-mb,
 * then: fdatasync (all dirty data to disk), the extent count (FIEMAP, the lines of
 * filefrag -v), reading the file front to back after dropping its cache (what a
 * merge in file order costs), and the unlink.  One line of key=value.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"

const char *bench_name = "layout-bench";

static struct {
	const char *dir, *layout;
	uint64_t size, ops, unit;
	unsigned threads;
	int fill;
} cfg = { "/var/tmp", "log", 4096ull << 20, 0, 4096, 16, 0 };

static int fd;
static char path[4096];
static _Atomic uint64_t next_op, next_slot;
static uint32_t *where;		/* per allocation unit: slot + 1, 0 = none yet */
static pthread_mutex_t alloc_lock = PTHREAD_MUTEX_INITIALIZER;

static void put(const void *buf, size_t len, uint64_t off)
{
	if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
		die("pwrite", errno);
}

/* File offset of block b, allocating (and for fill:N writing) its unit first. */
static uint64_t place(uint64_t b, const uint8_t *zeros)
{
	uint64_t per = cfg.unit / 4096, u = b / per, slot;

	if (!strcmp(cfg.layout, "fixed"))
		return b * 4096;
	pthread_mutex_lock(&alloc_lock);	/* first touch is rare: a lock is fine */
	if (!where[u]) {
		where[u] = (uint32_t)(atomic_fetch_add(&next_slot, 1) + 1);
		if (cfg.fill)
			put(zeros, cfg.unit, (uint64_t)(where[u] - 1) * cfg.unit);
	}
	slot = where[u] - 1;
	pthread_mutex_unlock(&alloc_lock);
	return slot * cfg.unit + (b % per) * 4096;
}

static void *writer(void *arg)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1);
	uint8_t *buf = NULL, *zeros = calloc(1, cfg.unit);

	if (!zeros || posix_memalign((void **)&buf, 4096, 4096))
		die("memory", ENOMEM);
	memset(buf, 0x33, 4096);
	while (atomic_fetch_add(&next_op, 1) < cfg.ops)
		put(buf, 4096, place(rnd(&seed) % (cfg.size / 4096), zeros));
	free(buf);
	free(zeros);
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option o[] = {
		{ "dir", 1, 0, 'd' }, { "layout", 1, 0, 'l' }, { "size-mb", 1, 0, 's' },
		{ "ops", 1, 0, 'o' }, { "threads", 1, 0, 't' }, { 0 } };
	pthread_t th[64];
	double t0, t_write, t_sync, t_read, t_unlink;
	uint8_t *buf;
	uint64_t bytes = 0;
	ssize_t n;
	int c;

	while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
		switch (c) {
		case 'd': cfg.dir = optarg; break;
		case 'l': cfg.layout = optarg; break;
		case 's': cfg.size = strtoull(optarg, NULL, 0) << 20; break;
		case 'o': cfg.ops = strtoull(optarg, NULL, 0); break;
		case 't': cfg.threads = (unsigned)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: layout-bench --layout fixed|log|cluster:N|fill:N "
				"[--dir D] [--size-mb N] [--ops N] [--threads N]\n");
			return 2;
		}
	}
	if (!strncmp(cfg.layout, "cluster:", 8) || !strncmp(cfg.layout, "fill:", 5)) {
		cfg.fill = cfg.layout[0] == 'f';
		cfg.unit = strtoull(strchr(cfg.layout, ':') + 1, NULL, 0);
	} else if (strcmp(cfg.layout, "fixed") && strcmp(cfg.layout, "log")) {
		die(cfg.layout, EINVAL);
	}
	if (!cfg.ops)
		cfg.ops = cfg.size / 4096;
	if (cfg.unit < 4096 || cfg.unit % 4096 || !cfg.threads || cfg.threads > 64)
		die("arguments", EINVAL);
	where = calloc(cfg.size / cfg.unit + 1, sizeof(*where));
	if (!where || posix_memalign((void **)&buf, 4096, 1 << 20))
		die("memory", ENOMEM);
	snprintf(path, sizeof(path), "%s/layout-bench.%d", cfg.dir, (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		die(path, errno);
	t0 = now();
	for (unsigned i = 0; i < cfg.threads; i++)
		pthread_create(&th[i], NULL, writer, (void *)(uintptr_t)i);
	for (unsigned i = 0; i < cfg.threads; i++)
		pthread_join(th[i], NULL);
	t_write = now() - t0;
	t0 = now();
	if (fdatasync(fd))
		die("fdatasync", errno);
	t_sync = now() - t0;
	long ext = extents(fd);

	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	t0 = now();
	for (uint64_t off = 0; (n = pread(fd, buf, 1 << 20, (off_t)off)) > 0; off += (uint64_t)n)
		bytes += (uint64_t)n;
	t_read = now() - t0;
	close(fd);
	t0 = now();
	if (unlink(path))
		die(path, errno);
	t_unlink = now() - t0;
	printf("iops=%.0f sync_s=%.2f extents=%ld file_mib=%.0f read_s=%.2f unlink_s=%.3f\n",
	       (double)cfg.ops / t_write, t_sync, ext, (double)bytes / (1 << 20), t_read, t_unlink);
	return 0;
}
