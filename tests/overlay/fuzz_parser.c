/* fuzz_parser.c - libFuzzer target for the header and record-block parsers and the
 * loaders that tie them together (what open and check run on untrusted files).
 *
 * Input: the first 4096 bytes are a header slot, every following 4096 bytes a
 * record block (version 2) or a map page (version 1).  Each structure is tried
 * twice: as given (so checksum rejection is exercised) and with its checksum
 * recomputed (so mutations reach the field checks behind it: libFuzzer alone would
 * almost never produce a matching CRC).  When the header is valid, a sparse
 * in-memory file is laid out from it: version 2 record blocks at the slot each
 * names, version 1 pages at the slots its directory names; then overlay_check and
 * a read-only overlay_open (plus stats, extent iteration in both orders and reads)
 * run on that file.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define MAX_FILE (1ull << 34)

static void fix_crc(uint8_t *p, size_t len, size_t at)
{
	uint32_t crc;

	memset(p + at, 0, 4);
	crc = ov_crc32c(0, p, len);
	ov_put32(p + at, crc);
}

static void fix_header_crc(uint8_t *slot)
{
	uint32_t len = ov_get32(slot + 12);

	if (len >= OV_PAGE_SIZE && len <= OV_HDR_SLOT && len % OV_PAGE_SIZE == 0)
		fix_crc(slot, len, 16);
}

static void fix_block_crc(uint8_t *blk)
{
	uint32_t len = ov_get32(blk + 8);

	fix_crc(blk, len >= OV_PAGE_SIZE && len <= OV_PAGE_SIZE ? len : OV_PAGE_SIZE, 4);
}

static void exercise(int fd)
{
	struct overlay_open_opts o = { .flags = OVERLAY_OPEN_RDONLY };
	struct overlay *ov;

	overlay_check(fd, NULL, NULL);
	if (overlay_open(-1, fd, &o, &ov))
		return;

	struct overlay_stats st;
	struct overlay_extent e;
	struct overlay_log_iter *it;
	uint64_t cur = 0;
	uint8_t buf[64];

	overlay_stats(ov, &st);
	for (int i = 0; i < 64 && overlay_next_extent(ov, &cur, &e); i++)
		overlay_read(ov, buf, sizeof(buf), e.off);
	if (!overlay_log_iter_begin(ov, &it)) {
		for (int i = 0; i < 64 && overlay_log_iter_next(it, &e) == 1; i++)
			overlay_read(ov, buf, sizeof(buf), e.off);
		overlay_log_iter_end(it);
	}
	overlay_close(ov);
}

/* Version 2: each block at the slot it names (its first 4 KiB; the rest of a larger
 * slot reads as zeros). */
static void try_v2(const uint8_t *slot, const struct ov_meta *m, uint8_t *blks, size_t nb)
{
	uint64_t end = m->data_off + (m->log_end << m->block_shift);
	int fd = memfd_create("ovfuzz", MFD_CLOEXEC);

	if (fd < 0 || end > MAX_FILE || ftruncate(fd, (off_t)end))
		goto out;
	if (pwrite(fd, slot, OV_HDR_LEN, (off_t)((m->gen & 1) * OV_HDR_SLOT)) != OV_HDR_LEN)
		goto out;
	for (size_t k = 0; k < nb; k++) {
		uint8_t *b = blks + k * OV_PAGE_SIZE;
		uint64_t s = ov_get64(b + 40);

		if (s < m->log_end &&
		    pwrite(fd, b, OV_PAGE_SIZE, (off_t)(m->data_off + (s << m->block_shift))) !=
		    OV_PAGE_SIZE)
			goto out;
	}
	exercise(fd);
out:
	if (fd >= 0)
		close(fd);
}

/* Version 1: pages at the slots its directory names, in page order. */
static void try_v1(const uint8_t *slot, const struct ov_meta *m, uint8_t *pages, size_t np)
{
	uint64_t end = m->map_off + m->npages * 2 * OV_PAGE_SIZE;
	int fd = memfd_create("ovfuzz", MFD_CLOEXEC);
	size_t k = 0;

	if (fd < 0 || end > MAX_FILE || ftruncate(fd, (off_t)end))
		goto out;
	if (pwrite(fd, slot, OV_HDR_SLOT, (off_t)((m->gen & 1) * OV_HDR_SLOT)) != OV_HDR_SLOT)
		goto out;
	for (uint64_t p = 0; p < m->npages && k < np; p++) {
		unsigned d = ov1_dir_get(m->dir, p);

		if (d != OV1_DIR_NONE &&
		    pwrite(fd, pages + k++ * OV_PAGE_SIZE, OV_PAGE_SIZE,
			   (off_t)(m->map_off + (2 * p + d - 1) * OV_PAGE_SIZE)) != OV_PAGE_SIZE)
			goto out;
	}
	exercise(fd);
out:
	if (fd >= 0)
		close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *slot = calloc(1, OV_HDR_SLOT);
	size_t nb = size > OV_PAGE_SIZE ? (size - OV_PAGE_SIZE) / OV_PAGE_SIZE : 0;
	uint8_t *blks = calloc(nb ? nb : 1, OV_PAGE_SIZE);
	struct ov_meta m;

	memcpy(slot, data, size < OV_PAGE_SIZE ? size : OV_PAGE_SIZE);
	if (nb)
		memcpy(blks, data + OV_PAGE_SIZE, nb * OV_PAGE_SIZE);
	if (!ov_header_any_decode(slot, OV_HDR_SLOT, &m, NULL, 0))
		ov_meta_free(&m);
	fix_header_crc(slot);
	if (!ov_header_any_decode(slot, OV_HDR_SLOT, &m, NULL, 0)) {
		for (size_t k = 0; k < nb; k++) {
			uint8_t *b = blks + k * OV_PAGE_SIZE;
			struct ov_rechdr h;
			uint64_t words[OV1_PAGE_WORDS];

			if (m.version == OV1_VERSION) {
				ov1_page_decode(b, k, m.gen, m.nblocks, words, NULL, 0);
				fix_crc(b, OV_PAGE_SIZE, 4);
				ov1_page_decode(b, k, m.gen, m.nblocks, words, NULL, 0);
			} else {
				ov_rec_decode(b, OV_PAGE_SIZE, 1u << m.block_shift, &m, &h, NULL, 0);
				fix_block_crc(b);
				ov_rec_decode(b, OV_PAGE_SIZE, 1u << m.block_shift, &m, &h, NULL, 0);
			}
		}
		if (m.version == OV1_VERSION)
			try_v1(slot, &m, blks, nb);
		else
			try_v2(slot, &m, blks, nb);
		ov_meta_free(&m);
	}
	free(slot);
	free(blks);
	return 0;
}
