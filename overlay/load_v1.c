/* load_v1.c - read a version-1 file into the version-2 map.
 *
 * Version 1 kept block b at data_off + b * block_size, which is exactly slot b of
 * a version-2 log with the same data_off: its DATA blocks become entries naming
 * slot b, and no byte of data moves.  Its map pages (shadow-paged, 2 bits per
 * block, a 2-bit directory in the header) are read and validated as version 1
 * did, one page at a time, so loading needs no memory for the blocks that are
 * BASE.  The log starts out as long as version 1's data and map areas; the map
 * area stays reserved until the first commit, which writes a version-2 checkpoint
 * and header (commit.c) and so upgrades the file: until that header is durable a
 * crash leaves a valid version-1 file.  Holes of the old data area become free
 * slots.
 */
#include <stdlib.h>
#include <sys/stat.h>

#include "internal.h"

static int load_page(struct overlay *ov, uint64_t p, uint8_t *page, uint64_t *words,
		     struct ov_finder *f)
{
	const struct ov_meta *m = &ov->meta;
	unsigned d = ov1_dir_get(m->dir, p);
	uint64_t first = p * OV1_BLOCKS_PER_PAGE;
	uint64_t nb = m->nblocks - first < OV1_BLOCKS_PER_PAGE ? m->nblocks - first :
		OV1_BLOCKS_PER_PAGE;
	char why[160];
	int ret;

	if (d == OV1_DIR_NONE)
		return 0;	/* every block still in the base */
	ret = ov_pread(ov->diff_fd, ov->diff_direct, page, OV_PAGE_SIZE,
		       m->map_off + (2 * p + d - 1) * OV_PAGE_SIZE);
	if (ret)
		return ret;
	ret = ov1_page_decode(page, p, m->gen, nb, words, why, sizeof(why));
	if (ret) {
		ov_note(f, true, "map page %llu (slot %u): %s", (unsigned long long)p, d - 1, why);
		return ret;
	}
	for (uint64_t i = 0; i < nb; i++) {
		unsigned st = (unsigned)(words[i / 32] >> (2 * (i % 32))) & 3u;
		uint64_t b = first + i;
		struct ov_leaf *l;

		if (st == OVERLAY_BASE)
			continue;
		ret = ov_leaf_get(ov, b >> OV_LEAF_SHIFT, &l);
		if (ret)
			return ret;
		atomic_store(&l->e[b % OV_LEAF_BLOCKS],
			     st == OVERLAY_DATA ? ov_e_data(b) : OV_E_ZERO);
	}
	return 0;
}

static int load_pages(struct overlay *ov, struct ov_finder *f)
{
	uint8_t *page = ov_alloc(OV_PAGE_SIZE);
	uint64_t *words = malloc(OV1_PAGE_WORDS * 8);
	int ret = page && words ? 0 : -ENOMEM, first_err = 0;

	for (uint64_t p = 0; !ret && p < ov->meta.npages; p++) {
		ret = load_page(ov, p, page, words, f);
		if (ret && !first_err)
			first_err = ret;
		if (ret == -EBADMSG && f->problems)
			ret = 0;	/* check goes on */
	}
	free(page);
	free(words);
	return ret ?: first_err;
}

int ov_load_v1(struct overlay *ov, struct ov_finder *f)
{
	const struct ov_meta *m = &ov->meta;
	uint64_t map_end = m->map_off + m->npages * 2 * OV_PAGE_SIZE;
	uint64_t first = (m->map_off - m->data_off) >> ov->shift;
	uint64_t end = (map_end - m->data_off + ov->bs - 1) >> ov->shift;
	uint64_t *reserved = NULL;
	struct stat st;
	int ret;

	if (fstat(ov->diff_fd, &st))
		return -errno;
	if ((uint64_t)st.st_size < map_end) {
		ov_note(f, true, "file truncated: %lld bytes, map ends at %llu",
			(long long)st.st_size, (unsigned long long)map_end);
		return -EBADMSG;
	}
	if (end > OV_LOG_MAX) {
		ov_note(f, true, "version-1 file too large for a version-2 log (%llu slots)",
			(unsigned long long)end);
		return -EFBIG;
	}
	atomic_store(&ov->log_end, end);
	ret = load_pages(ov, f);
	if (ret)
		return ret;
	ret = -ENOMEM;
	reserved = malloc((end - first + 1) * sizeof(*reserved));
	if (reserved) {
		for (uint64_t s = first; s < end; s++)
			reserved[s - first] = s;
		ret = 0;
	}
	ret = ret ?: ov_check_counts(ov, f);
	ret = ret ?: ov_rebuild_free(ov, reserved, end - first, f);
	free(reserved);
	return ret;
}
