/* open.c - open an existing differencing file.
 *
 * The committed state is loaded and validated (load.c), then the base is checked
 * against the identity recorded at create (ident.c): a differencing file is never
 * applied to the wrong base.  A file whose older header slot is damaged (a commit
 * was torn by a crash) opens normally; unless opened read-only its header is
 * rewritten at once so the file is healthy again for `vds-diff check`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "internal.h"

struct last_msg {
	char *why;
	size_t len;
};

/* The last finding is the fatal one (load stops there). */
static void keep_last(void *arg, const char *msg)
{
	struct last_msg *f = arg;

	if (!f->why || !f->len || !strncmp(msg, "using header", 12))
		return;
	snprintf(f->why, f->len, "%s", msg);
}

static int check_identity(int base_fd, const struct ov_meta *m,
			  const struct overlay_open_opts *o, char *why, size_t wl)
{
	const char *uuid = o && o->base_uuid ? o->base_uuid : "";
	struct stat st;
	uint32_t fp;
	int ret;

	if (strcmp(uuid, m->uuid)) {
		ov_set_why(why, wl, "base uuid '%s' does not match '%s' in the file", uuid, m->uuid);
		return -ESTALE;
	}
	if (m->flags & OV_FLAG_BASE_DIRTY)
		return 0;	/* a merge onto the base has changed it on purpose */
	if (fstat(base_fd, &st))
		return -errno;
	if ((uint64_t)st.st_size != m->base_size) {
		ov_set_why(why, wl, "base is %lld bytes, the file was made for %llu",
			   (long long)st.st_size, (unsigned long long)m->base_size);
		return -ESTALE;
	}
	ret = ov_base_fingerprint(base_fd, ov_fd_direct(base_fd), m->base_size, &fp);
	if (!ret && fp != m->base_fp) {
		ov_set_why(why, wl, "base contents do not match the file's fingerprint");
		ret = -ESTALE;
	}
	return ret;
}

static int adopt(struct overlay *ov, struct ov_loaded *l)
{
	int ret;

	ov->base_size = l->meta.base_size;
	ov->data_off = l->meta.data_off;
	ret = ov_geometry(ov, l->meta.size);
	if (ret)
		return ret;
	for (uint64_t i = 0; i < ov_words_for(ov->nblocks); i++)
		atomic_store(&ov->map[i], l->words[i]);
	for (uint64_t p = 0; p < ov->npages; p++) {
		uint64_t nd, nz;

		ov_count_states(&ov->map[p * OV_PAGE_WORDS], OV_BLOCKS_PER_PAGE, &nd, &nz);
		ov->pcount[p] = (struct ov_pcount){ (uint16_t)nd, (uint16_t)nz };
		atomic_store(&ov->page_dirty[p], 0);
	}
	atomic_store(&ov->ndata, l->meta.ndata);
	atomic_store(&ov->nzero, l->meta.nzero);
	ov->meta = l->meta;
	l->meta.dir = NULL;
	ov->want_flags = ov->meta.flags;
	ov->repair_header = l->other_slot_bad;
	return 0;
}

int overlay_open(int base_fd, int diff_fd, const struct overlay_open_opts *o,
		 struct overlay **out)
{
	unsigned flags = o ? o->flags : 0;
	char *why = o ? o->why : NULL;
	size_t wl = o ? o->why_len : 0;
	struct last_msg fm = { why, wl };
	struct ov_loaded l;
	struct overlay *ov = NULL;
	int ret;

	if (base_fd < 0 && !(flags & OVERLAY_OPEN_RDONLY))
		return -EBADF;
	ret = ov_load(diff_fd, ov_fd_direct(diff_fd), &l, keep_last, &fm, NULL);
	if (ret)
		return ret;
	if (base_fd >= 0 && !(flags & OVERLAY_OPEN_NO_IDENTITY))
		ret = check_identity(base_fd, &l.meta, o, why, wl);
	ret = ret ?: ov_handle_new(base_fd, diff_fd, l.meta.block_shift, &ov);
	ret = ret ?: adopt(ov, &l);
	ov_meta_free(&l.meta);
	free(l.words);
	if (!ret && ov) {
		ov->rdonly = flags & OVERLAY_OPEN_RDONLY;
		if (ov->repair_header && !ov->rdonly) {
			pthread_mutex_lock(&ov->flush_lock);
			ret = ov_commit(ov, false);
			pthread_mutex_unlock(&ov->flush_lock);
		}
	}
	if (ret) {
		overlay_close(ov);
		return ret;
	}
	*out = ov;
	return 0;
}
