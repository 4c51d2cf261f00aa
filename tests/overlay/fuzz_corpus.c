/* fuzz_corpus.c - writes the seed corpus of fuzz_parser: real differencing files
 * (several block sizes, data, zero and resized maps), each reduced to the fuzz
 * input format: the newest header slot's first 4096 bytes, then its chain's record
 * blocks; plus one version-1 file made by hand.  Usage: fuzz-overlay-corpus OUTDIR */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* The newest header's first 4 KiB, then the chain's record blocks, newest first
 * (the fuzzer places each at the slot it names). */
static int emit(int diff, const char *out)
{
	uint8_t *slot = malloc(OV_HDR_SLOT), *blk;
	struct ov_meta m[2];
	struct ov_rechdr h;
	int ok[2], fd, s;

	for (s = 0; s < 2; s++) {
		if (pread(diff, slot, OV_HDR_SLOT, (off_t)s * OV_HDR_SLOT) != OV_HDR_SLOT)
			return 1;
		ok[s] = !ov_header_decode(slot, OV_HDR_SLOT, &m[s], NULL, 0);
	}
	s = ok[1] && (!ok[0] || m[1].gen > m[0].gen);
	if (!ok[s] || pread(diff, slot, OV_HDR_SLOT, (off_t)s * OV_HDR_SLOT) != OV_HDR_SLOT)
		return 1;
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, slot, OV_PAGE_SIZE) != OV_PAGE_SIZE)
		return 1;
	blk = malloc(1u << m[s].block_shift);
	for (uint64_t at = m[s].chain_head, n = 0; at != OV_NO_SLOT && n < 64; n++) {
		uint32_t bs = 1u << m[s].block_shift;

		if (pread(diff, blk, bs, (off_t)(m[s].data_off + at * bs)) != (ssize_t)bs ||
		    write(fd, blk, OV_PAGE_SIZE) != OV_PAGE_SIZE ||
		    ov_rec_decode(blk, bs, bs, &m[s], &h, NULL, 0))
			return 1;
		at = h.prev;
	}
	close(fd);
	free(blk);
	free(slot);
	return 0;
}

/* A version-1 file by hand: header, one map page with data and zero entries. */
static int emit_v1(const char *dir)
{
	char out[512];
	uint8_t *slot = calloc(1, OV_HDR_SLOT), page[OV_PAGE_SIZE];
	uint64_t words[OV1_PAGE_WORDS] = { 0x1155, 0x2 }, nd, nz;
	uint8_t dirb[1] = { OV1_DIR_SLOT0 };
	struct ov_meta m = { .version = OV1_VERSION, .block_shift = 12, .gen = 1,
			     .size = 1 << 20, .nblocks = 256, .data_off = 1 << 20,
			     .npages = 1, .base_size = 1 << 20, .dir = dirb };
	int fd;

	m.map_off = m.data_off + (m.nblocks << 12);
	ov1_page_encode(page, 0, 1, words, &nd, &nz);
	m.ndata = nd;
	m.nzero = nz;
	m.hdr_len = (uint32_t)ov1_header_len(1);
	ov1_header_encode(&m, slot);
	snprintf(out, sizeof(out), "%s/seed-v1", dir);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, slot, OV_PAGE_SIZE) != OV_PAGE_SIZE ||
	    write(fd, page, OV_PAGE_SIZE) != OV_PAGE_SIZE)
		return 1;
	close(fd);
	free(slot);
	return 0;
}

static int one(const char *dir, int n, uint32_t bs, uint64_t size, int ops)
{
	char bp[512], dp[512], out[512];
	uint8_t buf[8192];
	struct overlay_create_opts o = { .block_size = bs, .size = -1, .base_uuid = "seed" };
	struct overlay *ov;
	int base, diff, ret = 1;

	snprintf(bp, sizeof(bp), "%s/.base%d", dir, n);
	snprintf(dp, sizeof(dp), "%s/.diff%d", dir, n);
	snprintf(out, sizeof(out), "%s/seed-%d", dir, n);
	unlink(dp);
	base = open(bp, O_RDWR | O_CREAT | O_TRUNC, 0644);
	diff = open(dp, O_RDWR | O_CREAT | O_EXCL, 0644);
	if (base < 0 || diff < 0 || ftruncate(base, (off_t)size) ||
	    overlay_create(base, diff, &o, &ov))
		return 1;
	memset(buf, 0xab, sizeof(buf));
	for (int i = 0; i < ops; i++) {
		uint64_t off = (uint64_t)i * 7919 * 13 % size;

		if (i % 3 == 2)
			overlay_discard(ov, off, 3 * bs);
		else
			overlay_write(ov, buf, sizeof(buf) - (size_t)i % 100, off);
	}
	if (ops > 10)
		overlay_resize(ov, size + size / 3 + 123);
	if (!overlay_flush(ov))
		ret = emit(diff, out);
	overlay_close(ov);
	close(base);
	close(diff);
	unlink(bp);
	unlink(dp);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc != 2 || (mkdir(argv[1], 0755) && access(argv[1], W_OK)))
		return 2;
	return one(argv[1], 0, 4096, 1 << 20, 0) | one(argv[1], 1, 4096, 300000, 20) |
	       one(argv[1], 2, 65536, 5 << 20, 30) | one(argv[1], 3, 8192, 70 << 20, 200) |
	       one(argv[1], 4, 1 << 20, 9 << 20, 5) | emit_v1(argv[1]);
}
