/* format_v1.c - version 1 header slots and map pages (FORMAT.md, appendix A).
 *
 * Version 1 kept data at fixed offsets and a 2-bit map in shadow-paged pages.  A
 * version-2 reader still opens such files (load_v1.c turns them into the v2 map,
 * block b being slot b), and the tests write them with the encoders here.  Pure
 * functions over byte buffers, no I/O, so the fuzz target can drive them
 * directly.  Everything on disk is little endian.  A decoder accepts a structure
 * only if its checksum matches AND every field is in range and consistent with the
 * others; a structure that fails any test is reported with a one-line reason and is
 * never used.  Reserved bytes must be zero so a future version can give them a
 * meaning without old readers misreading them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

static bool all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/* Header bytes actually written: fixed part plus directory, rounded to 4 KiB so a
 * commit writes whole sectors (and O_DIRECT works). */
uint64_t ov1_header_len(uint64_t npages)
{
	return ov_round_up(OV1_HDR_FIXED + (npages + 3) / 4, OV_PAGE_SIZE);
}

/* Version 1's own header fields (FORMAT.md appendix A); the rest are shared. */
enum { H_MAP_OFF = 64, H_NPAGES = 72, H_RSV2 = 176, H_DIR = OV1_HDR_FIXED };

void ov1_header_encode(const struct ov_meta *m, uint8_t *slot)
{
	uint32_t len = (uint32_t)ov1_header_len(m->npages);

	ov_hdr_put_common(m, slot, OV1_VERSION, len);
	ov_put64(slot + H_MAP_OFF, m->map_off);
	ov_put64(slot + H_NPAGES, m->npages);
	memcpy(slot + H_DIR, m->dir, (m->npages + 3) / 4);
	ov_hdr_seal(slot, len);
}

static int check_geometry(const struct ov_meta *m, char *why, size_t wl)
{
	uint64_t bs = 1ull << m->block_shift;

	if (m->npages != ov1_pages_for(m->nblocks) || m->npages > OV1_MAX_PAGES) {
		ov_set_why(why, wl, "map page count %llu wrong for %llu blocks",
			   (unsigned long long)m->npages, (unsigned long long)m->nblocks);
		return -EBADMSG;
	}
	if (m->hdr_len != ov1_header_len(m->npages)) {
		ov_set_why(why, wl, "header length %u wrong for %llu map pages", m->hdr_len,
			   (unsigned long long)m->npages);
		return -EBADMSG;
	}
	if (m->map_off % OV_PAGE_SIZE || m->map_off < m->data_off + m->nblocks * bs ||
	    m->map_off > (1ull << 62)) {
		ov_set_why(why, wl, "map offset %llu overlaps data or is misaligned",
			   (unsigned long long)m->map_off);
		return -EBADMSG;
	}
	if (m->ndata + m->nzero > m->nblocks || m->ndata > m->nblocks) {
		ov_set_why(why, wl, "block counters exceed block count");
		return -EBADMSG;
	}
	return 0;
}

int ov1_header_decode(const uint8_t *s, size_t len, struct ov_meta *m, char *why, size_t wl)
{
	int ret = ov_hdr_get_common(s, len, OV1_VERSION, m, H_RSV2, H_DIR, why, wl);

	if (ret)
		return ret;
	m->map_off = ov_get64(s + H_MAP_OFF);
	m->npages = ov_get64(s + H_NPAGES);
	ret = check_geometry(m, why, wl);
	if (ret)
		return ret;

	uint64_t dbytes = (m->npages + 3) / 4;

	for (uint64_t p = 0; p < m->npages; p++) {
		if (ov1_dir_get(s + H_DIR, p) > OV1_DIR_SLOT1) {
			ov_set_why(why, wl, "directory entry %llu invalid",
				   (unsigned long long)p);
			return -EBADMSG;
		}
	}
	/* Unused directory bits and the padding up to hdr_len must be zero. */
	if ((m->npages % 4 && (s[H_DIR + dbytes - 1] >> (2 * (m->npages % 4)))) ||
	    !all_zero(s + H_DIR + dbytes, m->hdr_len - H_DIR - dbytes)) {
		ov_set_why(why, wl, "header padding is not zero");
		return -EBADMSG;
	}
	m->dir = malloc(dbytes ? dbytes : 1);
	if (!m->dir)
		return -ENOMEM;
	memcpy(m->dir, s + H_DIR, dbytes);
	return 0;
}

/* Map page: magic, crc, page index, gen, then OV1_PAGE_WORDS words of 2-bit entries.
 * Page field offsets (FORMAT.md, "Map pages"). */
enum { P_MAGIC = 0, P_CRC = 4, P_INDEX = 8, P_GEN = 16, P_RSV = 24, P_WORDS = OV1_PAGE_HDR };

void ov1_page_encode(uint8_t *page, uint64_t index, uint64_t gen,
		    const uint64_t *words, uint64_t *nd, uint64_t *nz)
{
	const uint64_t lo = 0x5555555555555555ull;

	memset(page, 0, OV_PAGE_SIZE);
	ov_put32(page + P_MAGIC, OV1_PAGE_MAGIC);
	ov_put64(page + P_INDEX, index);
	ov_put64(page + P_GEN, gen);
	*nd = *nz = 0;
	for (size_t i = 0; i < OV1_PAGE_WORDS; i++) {
		uint64_t w = words[i];

		*nd += (uint64_t)__builtin_popcountll(w & ~(w >> 1) & lo);
		*nz += (uint64_t)__builtin_popcountll((w >> 1) & ~w & lo);
		ov_put64(page + P_WORDS + 8 * i, w);
	}
	ov_put32(page + P_CRC, ov_crc32c(0, page, OV_PAGE_SIZE));
}

static bool page_entries_ok(const uint64_t *words, uint64_t nb, char *why, size_t wl)
{
	for (uint64_t i = 0; i < OV1_PAGE_WORDS; i++) {
		uint64_t w = words[i];
		/* High bit of each 2-bit entry set together with the low bit = 3. */
		if (w & (w >> 1) & 0x5555555555555555ull) {
			ov_set_why(why, wl, "invalid block state 3 in map word %llu",
				   (unsigned long long)i);
			return false;
		}
		uint64_t first = i * 32u;

		if (first >= nb ? w != 0 :
		    (nb - first < 32 && (w >> (2 * (nb - first))) != 0)) {
			ov_set_why(why, wl, "map entries past the last block are not zero");
			return false;
		}
	}
	return true;
}

int ov1_page_decode(const uint8_t *page, uint64_t index, uint64_t max_gen, uint64_t nb,
		   uint64_t *words, char *why, size_t wl)
{
	uint32_t want = ov_get32(page + P_CRC), crc;
	static const uint8_t zero4[4];

	crc = ov_crc32c(0, page, P_CRC);
	crc = ov_crc32c(crc, zero4, 4);
	crc = ov_crc32c(crc, page + P_CRC + 4, OV_PAGE_SIZE - P_CRC - 4);
	if (ov_get32(page + P_MAGIC) != OV1_PAGE_MAGIC || crc != want) {
		ov_set_why(why, wl, "bad magic or checksum");
		return -EBADMSG;
	}
	if (ov_get64(page + P_INDEX) != index) {
		ov_set_why(why, wl, "holds page %llu, expected %llu",
			   (unsigned long long)ov_get64(page + P_INDEX), (unsigned long long)index);
		return -EBADMSG;
	}
	if (ov_get64(page + P_GEN) > max_gen) {
		ov_set_why(why, wl, "generation %llu newer than the header's %llu",
			   (unsigned long long)ov_get64(page + P_GEN), (unsigned long long)max_gen);
		return -EBADMSG;
	}
	if (ov_get64(page + P_RSV)) {
		ov_set_why(why, wl, "reserved bytes not zero");
		return -EBADMSG;
	}
	for (uint64_t i = 0; i < OV1_PAGE_WORDS; i++)
		words[i] = ov_get64(page + P_WORDS + 8 * i);
	return page_entries_ok(words, nb, why, wl) ? 0 : -EBADMSG;
}
