/* fuzz_parser.c - libFuzzer target for the header and map-page parsers and the
 * loader that ties them together (what open and check run on untrusted files).
 *
 * Input: the first 4096 bytes are a header slot, every following 4096 bytes a map
 * page.  Each structure is tried twice: as given (so checksum rejection is
 * exercised) and with its checksum recomputed (so mutations reach the field checks
 * behind it: libFuzzer alone would almost never produce a matching CRC).  When the
 * fixed header is valid, a sparse in-memory file is laid out from it with the
 * pages at the slots its directory names, and overlay_check and a read-only
 * overlay_open (plus stats, extent iteration and a read) run on that file.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

static void fix_header_crc(uint8_t *slot)
{
	uint32_t len, crc;

	memcpy(&len, slot + 12, 4);
	if (len < OV_PAGE_SIZE || len > OV_HDR_SLOT)
		return;
	memset(slot + 16, 0, 4);
	crc = ov_crc32c(0, slot, len);
	memcpy(slot + 16, &crc, 4);	/* little-endian hosts only; fine for fuzzing */
}

static void fix_page_crc(uint8_t *page)
{
	uint32_t crc;

	memset(page + 4, 0, 4);
	crc = ov_crc32c(0, page, OV_PAGE_SIZE);
	memcpy(page + 4, &crc, 4);
}

static void try_file(const uint8_t *slot, const struct ov_meta *m, uint8_t *pages, size_t np)
{
	uint64_t end = m->map_off + m->npages * 2 * OV_PAGE_SIZE;
	int fd = memfd_create("ovfuzz", MFD_CLOEXEC);
	size_t k = 0;

	if (fd < 0 || end > (1ull << 34) || ftruncate(fd, (off_t)end))
		goto out;
	if (pwrite(fd, slot, OV_HDR_SLOT, (off_t)((m->gen & 1) * OV_HDR_SLOT)) != OV_HDR_SLOT)
		goto out;
	for (uint64_t p = 0; p < m->npages && k < np; p++) {
		unsigned d = ov_dir_get(m->dir, p);

		if (d != OV_DIR_NONE &&
		    pwrite(fd, pages + k++ * OV_PAGE_SIZE, OV_PAGE_SIZE,
			   (off_t)(m->map_off + (2 * p + d - 1) * OV_PAGE_SIZE)) != OV_PAGE_SIZE)
			goto out;
	}
	overlay_check(fd, NULL, NULL);

	struct overlay_open_opts o = { .flags = OVERLAY_OPEN_RDONLY };
	struct overlay *ov;

	if (!overlay_open(-1, fd, &o, &ov)) {
		struct overlay_stats st;
		struct overlay_extent e;
		uint64_t cur = 0;
		uint8_t buf[64];

		overlay_stats(ov, &st);
		for (int i = 0; i < 64 && overlay_next_extent(ov, &cur, &e); i++)
			overlay_read(ov, buf, sizeof(buf), e.off);
		overlay_close(ov);
	}
out:
	if (fd >= 0)
		close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *slot = calloc(1, OV_HDR_SLOT);
	size_t np = size > OV_PAGE_SIZE ? (size - OV_PAGE_SIZE) / OV_PAGE_SIZE : 0;
	uint8_t *pages = calloc(np ? np : 1, OV_PAGE_SIZE);
	struct ov_meta m;

	memcpy(slot, data, size < OV_PAGE_SIZE ? size : OV_PAGE_SIZE);
	if (np)
		memcpy(pages, data + OV_PAGE_SIZE, np * OV_PAGE_SIZE);
	if (!ov_header_decode(slot, OV_HDR_SLOT, &m, NULL, 0))
		ov_meta_free(&m);
	fix_header_crc(slot);
	if (!ov_header_decode(slot, OV_HDR_SLOT, &m, NULL, 0)) {
		uint64_t words[OV_PAGE_WORDS];

		for (size_t k = 0; k < np; k++) {
			uint8_t *pg = pages + k * OV_PAGE_SIZE;

			ov_page_decode(pg, k, m.gen, m.nblocks, words, NULL, 0);
			fix_page_crc(pg);
			ov_page_decode(pg, k, m.gen, m.nblocks, words, NULL, 0);
		}
		try_file(slot, &m, pages, np);
		ov_meta_free(&m);
	}
	free(slot);
	free(pages);
	return 0;
}
