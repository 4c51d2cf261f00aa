/* load.c - find the committed state of a differencing file and validate it.
 *
 * The committed state is the valid header slot with the highest generation, plus
 * the map pages its directory points at.  A slot is valid only if its checksum and
 * every field check out and its generation's parity matches its position (commit g
 * always goes to slot g & 1), so a torn commit can only damage the slot that did
 * not hold the newest state.  Everything the chosen header references must then be
 * valid too: a damaged map page or a file shorter than the map is corruption and
 * the file is refused, never read with a guessed map.
 *
 * The same code serves overlay_open (stop at the first fatal finding) and
 * overlay_check (report every finding); report() hears both.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "internal.h"

struct finder {
	overlay_report_fn report;
	void *arg;
	int *problems;
};

static void note(struct finder *f, bool problem, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void note(struct finder *f, bool problem, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (problem && f->problems)
		(*f->problems)++;
	if (!f->report)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	f->report(f->arg, msg);
}

static int read_slot(int fd, bool direct, unsigned s, uint8_t *buf, struct ov_meta *m,
		     struct finder *f)
{
	char why[160];
	int ret = ov_pread(fd, direct, buf, OV_HDR_SLOT, (uint64_t)s * OV_HDR_SLOT);

	if (ret)
		return ret;
	ret = ov_header_decode(buf, OV_HDR_SLOT, m, why, sizeof(why));
	if (!ret && (m->gen & 1) != s) {
		snprintf(why, sizeof(why), "generation %llu does not belong in slot %u",
			 (unsigned long long)m->gen, s);
		ov_meta_free(m);
		ret = -EBADMSG;
	}
	if (ret)
		note(f, true, "header slot %u: %s", s, why);
	return ret;
}

/* Pick the newest valid header; the other one is only reported on. */
static int load_header(int fd, bool direct, struct ov_loaded *l, struct finder *f)
{
	struct ov_meta m[2];
	int r[2];
	uint8_t *buf = ov_alloc(OV_HDR_SLOT);

	if (!buf)
		return -ENOMEM;
	for (unsigned s = 0; s < 2; s++)
		r[s] = read_slot(fd, direct, s, buf, &m[s], f);
	free(buf);
	for (unsigned s = 0; s < 2; s++)
		if (r[s] && r[s] != -EBADMSG && r[s] != -ENOTSUP) {
			if (!r[!s])
				ov_meta_free(&m[!s]);
			return r[s];
		}
	if (r[0] && r[1])
		return r[0] == -ENOTSUP || r[1] == -ENOTSUP ? -ENOTSUP : -EBADMSG;

	unsigned pick = r[0] ? 1 : r[1] ? 0 : m[1].gen > m[0].gen;

	l->meta = m[pick];
	l->other_slot_bad = r[!pick] != 0;
	if (!r[!pick])
		ov_meta_free(&m[!pick]);
	note(f, false, "using header slot %u, generation %llu", pick,
	     (unsigned long long)l->meta.gen);
	return 0;
}

static int load_page(int fd, bool direct, struct ov_loaded *l, uint64_t p, uint8_t *page,
		     struct finder *f)
{
	const struct ov_meta *m = &l->meta;
	unsigned d = ov_dir_get(m->dir, p);
	uint64_t *words = l->words + p * OV_PAGE_WORDS;
	uint64_t first = p * OV_BLOCKS_PER_PAGE;
	uint64_t nb = m->nblocks - first < OV_BLOCKS_PER_PAGE ? m->nblocks - first :
		OV_BLOCKS_PER_PAGE;
	char why[160];
	int ret;

	if (d == OV_DIR_NONE) {
		memset(words, 0, OV_PAGE_WORDS * 8);	/* every block still in the base */
		return 0;
	}
	ret = ov_pread(fd, direct, page, OV_PAGE_SIZE,
		       m->map_off + (2 * p + d - 1) * OV_PAGE_SIZE);
	if (ret)
		return ret;
	ret = ov_page_decode(page, p, m->gen, nb, words, why, sizeof(why));
	if (ret)
		note(f, true, "map page %llu (slot %u): %s", (unsigned long long)p, d - 1, why);
	return ret;
}

static int load_map(int fd, bool direct, struct ov_loaded *l, struct finder *f)
{
	const struct ov_meta *m = &l->meta;
	uint8_t *page = ov_alloc(OV_PAGE_SIZE);
	int ret = 0, first_err = 0;

	l->words = calloc(m->npages ? m->npages * OV_PAGE_WORDS : 1, 8);
	if (!page || !l->words) {
		free(page);
		return -ENOMEM;
	}
	for (uint64_t p = 0; p < m->npages; p++) {
		ret = load_page(fd, direct, l, p, page, f);
		if (ret && !first_err)
			first_err = ret;
		if (ret && (ret != -EBADMSG || !f->problems))
			break;	/* open stops at the first problem; check goes on */
	}
	free(page);
	return first_err;
}

static int check_counts(struct ov_loaded *l, struct finder *f)
{
	uint64_t nd = 0, nz = 0;

	ov_count_states((const _Atomic uint64_t *)l->words, l->meta.nblocks, &nd, &nz);
	if (nd != l->meta.ndata || nz != l->meta.nzero) {
		note(f, true, "map holds %llu data / %llu zero blocks, header says %llu / %llu",
		     (unsigned long long)nd, (unsigned long long)nz,
		     (unsigned long long)l->meta.ndata, (unsigned long long)l->meta.nzero);
		return -EBADMSG;
	}
	return 0;
}

int ov_load(int fd, bool direct, struct ov_loaded *l, overlay_report_fn report, void *arg,
	    int *problems)
{
	struct finder f = { report, arg, problems };
	struct stat st;
	int ret;

	memset(l, 0, sizeof(*l));
	if (fstat(fd, &st))
		return -errno;
	if ((uint64_t)st.st_size < OV_HDR_AREA) {
		note(&f, true, "file is %lld bytes, shorter than the two header slots",
		     (long long)st.st_size);
		return -EBADMSG;
	}
	ret = load_header(fd, direct, l, &f);
	if (ret)
		return ret;
	if ((uint64_t)st.st_size < l->meta.map_off + l->meta.npages * 2 * OV_PAGE_SIZE) {
		note(&f, true, "file truncated: %lld bytes, map ends at %llu",
		     (long long)st.st_size,
		     (unsigned long long)(l->meta.map_off + l->meta.npages * 2 * OV_PAGE_SIZE));
		ret = -EBADMSG;
	}
	if (!ret || problems)
		ret = load_map(fd, direct, l, &f) ?: ret;
	if (!ret)
		ret = check_counts(l, &f);
	if (ret) {
		ov_meta_free(&l->meta);
		free(l->words);
		l->words = NULL;
	}
	return ret;
}
