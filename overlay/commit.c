/* commit.c - make the in-memory map durable: the heart of crash safety.
 *
 * A commit moves the file from generation g to g+1 by shadow paging:
 *
 *   1. snapshot: for every changed map page, clear its dirty flag, then encode it.
 *      Every DATA entry in the snapshot was stored after its data write returned
 *      (map.c), so that data is covered by the next step.
 *   2. fdatasync(diff): all data the snapshot references is durable ("data before
 *      map").
 *   3. write each page into the slot the committed directory does NOT use, so the
 *      committed copy stays intact whatever happens to this write.
 *   4. fdatasync(diff): the new pages are durable before anything points to them.
 *   5. write header g+1 (with the new directory) into slot (g+1) & 1, the slot not
 *      holding g, and fdatasync.  This single write is the commit point: a torn
 *      header fails its checksum and open falls back to g, whose pages are untouched.
 *
 * If anything fails, the pages of the snapshot are marked dirty again and the
 * in-memory committed header is unchanged; the next commit retries into the same
 * inactive slots.  With nothing to commit a flush is just step 2.
 *
 * A relocating commit (resize) writes the whole map to a fresh region past both the
 * old map and the new data area, so neither the committed map nor any committed
 * data block is overwritten before the header switches.
 */
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

struct snap {
	uint64_t *idx;		/* page numbers in the snapshot */
	uint8_t *pages;		/* their encoded images, OV_PAGE_SIZE each */
	struct ov_pcount *cnt;
	uint64_t n;
};

/* Which pages to commit is decided first: exactly the pages dirty when the flush
 * began (or all of them), so pages dirtied meanwhile can never crowd out a page a
 * completed write depends on; they simply stay dirty for the next commit. */
static int snap_take(struct overlay *ov, bool all, uint64_t gen, struct snap *s)
{
	s->n = 0;
	s->idx = malloc((ov->npages ? ov->npages : 1) * sizeof(*s->idx));
	if (!s->idx)
		return -ENOMEM;
	for (uint64_t p = 0; p < ov->npages; p++)	/* one pass: the set is fixed here */
		if (all || atomic_load(&ov->page_dirty[p]))
			s->idx[s->n++] = p;
	s->cnt = malloc((s->n ? s->n : 1) * sizeof(*s->cnt));
	s->pages = ov_alloc(s->n ? s->n * OV_PAGE_SIZE : 1);
	if (!s->pages || !s->cnt) {
		s->n = 0;	/* nothing cleared yet: nothing to undo */
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < s->n; i++) {
		uint64_t p = s->idx[i], nd, nz;

		/* Clear before encoding: a change racing the encode re-dirties the page. */
		atomic_store(&ov->page_dirty[p], 0);
		/* Counts come from the encoded image, not the live (moving) words. */
		ov_page_encode(s->pages + i * OV_PAGE_SIZE, p, gen, &ov->map[p * OV_PAGE_WORDS],
			       &nd, &nz);
		s->cnt[i] = (struct ov_pcount){ (uint16_t)nd, (uint16_t)nz };
	}
	return 0;
}

static void snap_undo(struct overlay *ov, struct snap *s)
{
	for (uint64_t i = 0; i < s->n; i++)
		atomic_store(&ov->page_dirty[s->idx[i]], 1);
}

static void snap_free(struct snap *s)
{
	free(s->idx);
	free(s->pages);
	free(s->cnt);
}

static int sync_fd(int fd)
{
	return fdatasync(fd) ? -errno : 0;
}

/* Build the next header: same identity, current geometry, new directory. */
static int next_meta(struct overlay *ov, bool relocate, struct ov_meta *nm)
{
	const struct ov_meta *m = &ov->meta;
	size_t db = (ov->npages + 3) / 4;

	*nm = *m;
	nm->dir = calloc(db ? db : 1, 1);
	if (!nm->dir)
		return -ENOMEM;
	nm->gen = m->gen + 1;
	nm->flags = ov->want_flags;
	nm->size = ov->size;
	nm->nblocks = ov->nblocks;
	nm->npages = ov->npages;
	nm->hdr_len = (uint32_t)ov_header_len(ov->npages);
	if (relocate) {
		uint64_t old_end = m->map_off + m->npages * 2 * OV_PAGE_SIZE;
		uint64_t data_end = ov_round_up(m->data_off + (ov->nblocks << ov->shift),
						OV_PAGE_SIZE);

		nm->map_off = old_end > data_end ? old_end : data_end;
	} else {
		memcpy(nm->dir, m->dir, db);
	}
	return 0;
}

static int write_pages(struct overlay *ov, struct snap *s, struct ov_meta *nm)
{
	for (uint64_t i = 0; i < s->n; i++) {
		uint64_t p = s->idx[i];
		unsigned cur = ov_dir_get(nm->dir, p);
		unsigned slot = cur == OV_DIR_SLOT0 ? 1 : 0;
		int ret;

		if (s->cnt[i].nd == 0 && s->cnt[i].nz == 0) {
			ov_dir_set(nm->dir, p, OV_DIR_NONE);	/* all base: no page needed */
			continue;
		}
		ret = ov_pwrite(ov->diff_fd, ov->diff_direct, s->pages + i * OV_PAGE_SIZE,
				OV_PAGE_SIZE, nm->map_off + (2 * p + slot) * OV_PAGE_SIZE);
		if (ret)
			return ret;
		ov_dir_set(nm->dir, p, slot ? OV_DIR_SLOT1 : OV_DIR_SLOT0);
	}
	return 0;
}

static void totals(struct overlay *ov, struct snap *s, struct ov_meta *nm)
{
	nm->ndata = nm->nzero = 0;
	for (uint64_t i = 0; i < s->n; i++)
		ov->pcount[s->idx[i]] = s->cnt[i];
	for (uint64_t p = 0; p < ov->npages; p++) {
		nm->ndata += ov->pcount[p].nd;
		nm->nzero += ov->pcount[p].nz;
	}
}

int ov_write_header(struct overlay *ov, const struct ov_meta *nm)
{
	uint8_t *slot = ov_alloc(OV_HDR_SLOT);
	int ret;

	if (!slot)
		return -ENOMEM;
	ov_header_encode(nm, slot);
	ret = ov_pwrite(ov->diff_fd, ov->diff_direct, slot, nm->hdr_len,
			(nm->gen & 1) * OV_HDR_SLOT);
	free(slot);
	return ret ? ret : sync_fd(ov->diff_fd);
}

static int extend_for_map(struct overlay *ov, const struct ov_meta *nm)
{
	uint64_t end = nm->map_off + nm->npages * 2 * OV_PAGE_SIZE;
	off_t cur = lseek(ov->diff_fd, 0, SEEK_END);

	if (cur < 0)
		return -errno;
	if ((uint64_t)cur < end && ftruncate(ov->diff_fd, (off_t)end))
		return -errno;
	return 0;
}

int ov_commit(struct overlay *ov, bool relocate)
{
	struct ov_meta nm;
	struct snap s = { 0 };
	struct ov_pcount *saved = NULL;
	int ret;

	if (ov->rdonly)
		return -EROFS;
	relocate |= ov->need_relocate;
	ret = next_meta(ov, relocate, &nm);
	if (ret)
		return ret;
	ret = snap_take(ov, relocate, nm.gen, &s);
	if (!ret && !s.n && !relocate && nm.flags == ov->meta.flags && !ov->repair_header) {
		ret = sync_fd(ov->diff_fd);	/* nothing changed in the map */
		goto out;
	}
	saved = malloc((ov->npages ? ov->npages : 1) * sizeof(*saved));
	if (!ret && !saved)
		ret = -ENOMEM;
	if (!ret)
		memcpy(saved, ov->pcount, ov->npages * sizeof(*saved));
	ret = ret ?: sync_fd(ov->diff_fd);
	ret = ret ?: (relocate ? extend_for_map(ov, &nm) : 0);
	ret = ret ?: write_pages(ov, &s, &nm);
	ret = ret ?: sync_fd(ov->diff_fd);
	if (!ret) {
		totals(ov, &s, &nm);
		ret = ov_write_header(ov, &nm);
		if (ret)
			memcpy(ov->pcount, saved, ov->npages * sizeof(*saved));
	}
	if (!ret) {
		uint64_t old_off = ov->meta.map_off, old_len = ov->meta.npages * 2 * OV_PAGE_SIZE;

		ov_meta_free(&ov->meta);
		ov->meta = nm;
		ov->need_relocate = ov->repair_header = false;
		nm.dir = NULL;
		if (relocate && old_off != ov->meta.map_off && old_len)
			ov_punch(ov->diff_fd, old_off, old_len);	/* space only */
	}
out:
	if (ret)
		snap_undo(ov, &s);
	free(saved);
	snap_free(&s);
	ov_meta_free(&nm);
	return ret;
}

int overlay_flush(struct overlay *ov)
{
	int ret;

	if (ov->rdonly)
		return 0;
	pthread_rwlock_rdlock(&ov->io_lock);
	pthread_mutex_lock(&ov->flush_lock);
	ret = ov_commit(ov, false);
	pthread_mutex_unlock(&ov->flush_lock);
	pthread_rwlock_unlock(&ov->io_lock);
	return ret;
}
