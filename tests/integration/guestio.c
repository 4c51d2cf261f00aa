/* guestio.c - the workload of the guest in test_guest.py: runs inside a VM as its
 * only program, on the VM's virtio-blk disk, and proves that every write the guest
 * made is what it reads back, while the host migrates the disk underneath.
 *
 * Built by the test with `gcc -static` and put into the initramfs it makes; it is
 * never built by meson (a sanitized build cannot link statically).
 *
 * Every 512-byte sector of the disk is stamped with its own sector number and the
 * generation of the last write that covered it, the rest of the sector a function of
 * both. The program keeps the generation of every 4 KiB block in memory, so a read
 * that returns an older write (a write lost by a switch), another sector's data (a
 * misplaced write) or garbage is told apart and reported with both stamps.
 *
 * Each pass: writes of 4 KiB to 256 KiB at random 4 KiB-aligned offsets, a few of
 * them zeroing the range instead (BLKZEROOUT: write-zeroes/discard requests reach
 * the host's fallocate), a flush (fdatasync: a virtio-blk flush, fsync on the host
 * file), then a read of the whole disk compared block by block. All I/O is O_DIRECT,
 * so no guest page cache answers a read. A pass ends with one line on stdout (the
 * serial console): "guestio: pass N writes W zeroed Z errors E". A line "stop" on
 * stdin ends the loop after the pass under way: the whole disk is verified once more
 * and "guestio: final errors=E" is printed. The exit status is 0 when no error was
 * ever seen.
 *
 * `guestio --self-test FILE` (run by the test on the host, on a plain file) proves
 * the comparison can fail: it fills FILE, then plants a stale sector (an older
 * generation) and a misplaced one (another sector's data) behind the tracker's back,
 * and exits 0 only if the verify reports exactly those two.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECTOR		512u
#define BLOCK		4096u
#define MAX_BLOCKS	64u		/* largest write: 256 KiB */
#define READ_CHUNK	(1u << 20)
#define MAGIC		0x7664736775657374ull	/* "vdsguest" */
#define MAX_REPORTS	20

static uint32_t *gen;		/* per 4 KiB block; 0 = zeros (never written, or zeroed) */
static uint64_t nblocks;
static uint64_t errors;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

/* The sector's content for a generation: a header, then words of mix(). */
static void stamp(uint8_t *s, uint64_t sector, uint32_t g)
{
	uint64_t *w = (uint64_t *)s;

	w[0] = MAGIC;
	w[1] = sector;
	w[2] = g;
	for (unsigned i = 3; i < SECTOR / 8; i++)
		w[i] = mix(sector * 0x100000001b3ull + g * 0x9e3779b97f4a7c15ull + i);
}

static void report(const char *what, uint64_t sector, uint32_t want, const uint8_t *got)
{
	const uint64_t *w = (const uint64_t *)got;

	errors++;
	if (errors > MAX_REPORTS)
		return;
	printf("guestio: ERROR %s at sector %" PRIu64 ": want gen %u, found magic %#" PRIx64
	       " sector %" PRIu64 " gen %" PRIu64 "\n", what, sector, want, w[0], w[1], w[2]);
	fflush(stdout);
}

/* Compare one block as read with what its generation says it holds. */
static void check_block(const uint8_t *buf, uint64_t block)
{
	static uint8_t want[SECTOR], zero[SECTOR];
	uint32_t g = gen[block];

	for (unsigned i = 0; i < BLOCK / SECTOR; i++) {
		uint64_t sector = block * (BLOCK / SECTOR) + i;
		const uint8_t *got = buf + i * SECTOR;

		if (!g) {
			if (memcmp(got, zero, SECTOR))
				report("data where zeros belong", sector, 0, got);
			continue;
		}
		stamp(want, sector, g);
		if (memcmp(got, want, SECTOR))
			report("wrong data", sector, g, got);
	}
}

static void verify_all(int fd, uint8_t *buf)
{
	for (uint64_t off = 0; off < nblocks * BLOCK; off += READ_CHUNK) {
		size_t len = READ_CHUNK;

		if (off + len > nblocks * BLOCK)
			len = nblocks * BLOCK - off;
		ssize_t n = pread(fd, buf, len, off);

		if (n != (ssize_t)len) {
			printf("guestio: ERROR read at %" PRIu64 ": %s\n", off,
			       n < 0 ? strerror(errno) : "short read");
			errors++;
			continue;
		}
		for (size_t b = 0; b < len / BLOCK; b++)
			check_block(buf + b * BLOCK, off / BLOCK + b);
	}
}

static void write_range(int fd, uint8_t *buf, uint64_t first, uint64_t count, uint32_t g)
{
	for (uint64_t b = 0; b < count; b++)
		for (unsigned i = 0; i < BLOCK / SECTOR; i++)
			stamp(buf + b * BLOCK + i * SECTOR, (first + b) * (BLOCK / SECTOR) + i, g);
	ssize_t n = pwrite(fd, buf, count * BLOCK, first * BLOCK);

	if (n != (ssize_t)(count * BLOCK)) {
		printf("guestio: ERROR write at block %" PRIu64 ": %s\n", first,
		       n < 0 ? strerror(errno) : "short write");
		errors++;
		return;		/* the blocks' contents are unknown now: keep old gens */
	}
	for (uint64_t b = 0; b < count; b++)
		gen[first + b] = g;
}

static void zero_range(int fd, uint64_t first, uint64_t count)
{
	uint64_t range[2] = { first * BLOCK, count * BLOCK };

	if (ioctl(fd, BLKZEROOUT, range)) {
		printf("guestio: ERROR zeroout at block %" PRIu64 ": %s\n", first, strerror(errno));
		errors++;
		return;
	}
	for (uint64_t b = 0; b < count; b++)
		gen[first + b] = 0;
}

static int stop_asked(void)
{
	struct pollfd p = { .fd = 0, .events = POLLIN };
	char line[64];

	if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN))
		return 0;
	ssize_t n = read(0, line, sizeof(line) - 1);

	if (n <= 0)
		return 0;
	line[n] = 0;
	return strstr(line, "stop") != NULL;
}

static int open_disk(const char *path, uint8_t **buf)
{
	struct stat st;
	uint64_t size;
	int fd = open(path, O_RDWR | O_DIRECT);

	if (fd < 0 || fstat(fd, &st)) {
		printf("guestio: ERROR %s: %s\n", path, strerror(errno));
		return -1;
	}
	size = st.st_size;
	if (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, &size)) {
		printf("guestio: ERROR %s: %s\n", path, strerror(errno));
		return -1;
	}
	nblocks = size / BLOCK;
	gen = calloc(nblocks, sizeof(*gen));
	if (!gen || nblocks < MAX_BLOCKS || posix_memalign((void **)buf, BLOCK, READ_CHUNK)) {
		printf("guestio: ERROR %s: too small, or out of memory\n", path);
		return -1;
	}
	printf("guestio: %s: %" PRIu64 " blocks of %u bytes\n", path, nblocks, BLOCK);
	return fd;
}

/* Fill the disk once, each write its own generation: the disk starts as zeros. */
static uint32_t fill(int fd, uint8_t *buf)
{
	uint32_t g = 0;

	verify_all(fd, buf);
	for (uint64_t b = 0; b < nblocks; b += MAX_BLOCKS)
		write_range(fd, buf, b, nblocks - b < MAX_BLOCKS ? nblocks - b : MAX_BLOCKS, ++g);
	return g;
}

static int self_test(const char *path)
{
	uint8_t *buf;
	int fd = open_disk(path, &buf);

	if (fd < 0)
		return 1;
	fill(fd, buf);
	if (errors)
		return 1;
	/* block 3's first sector as its previous write would have left it (a lost
	 * write), block 5's last sector holding block 9's (a misplaced one) */
	stamp(buf, 3 * (BLOCK / SECTOR), gen[3] - 1);
	stamp(buf + SECTOR, 9 * (BLOCK / SECTOR) + 7, gen[9]);
	if (pwrite(fd, buf, SECTOR, 3 * BLOCK) != SECTOR ||
	    pwrite(fd, buf + SECTOR, SECTOR, 5 * BLOCK + 7 * SECTOR) != SECTOR) {
		printf("guestio: ERROR self-test write: %s\n", strerror(errno));
		return 1;
	}
	verify_all(fd, buf);
	printf("guestio: self-test found %" PRIu64 " errors\n", errors);
	return errors == 2 ? 0 : 1;
}

int main(int argc, char **argv)
{
	uint64_t writes = 0, zeroed = 0;
	uint8_t *buf;

	if (argc == 3 && !strcmp(argv[1], "--self-test"))
		return self_test(argv[2]);
	if (argc != 2) {
		fprintf(stderr, "usage: guestio DEVICE | guestio --self-test FILE\n");
		return 2;
	}
	int fd = open_disk(argv[1], &buf);

	if (fd < 0)
		return 1;
	uint32_t g = fill(fd, buf);

	for (unsigned pass = 1;; pass++) {
		for (unsigned i = 0; i < 128; i++) {
			uint64_t count = 1 + next_rand() % MAX_BLOCKS;
			uint64_t first = next_rand() % (nblocks - count + 1);

			if (next_rand() % 16 == 0) {
				zero_range(fd, first, count);
				zeroed++;
			} else {
				write_range(fd, buf, first, count, ++g);
				writes++;
			}
		}
		if (fdatasync(fd)) {
			printf("guestio: ERROR flush: %s\n", strerror(errno));
			errors++;
		}
		verify_all(fd, buf);
		printf("guestio: pass %u writes %" PRIu64 " zeroed %" PRIu64 " errors %" PRIu64 "\n",
		       pass, writes, zeroed, errors);
		fflush(stdout);
		if (stop_asked())
			break;
	}
	verify_all(fd, buf);
	printf("guestio: final errors=%" PRIu64 "\n", errors);
	fflush(stdout);
	close(fd);
	return errors ? 1 : 0;
}
