/* open.c - open an existing differencing file (version 2, or version 1).
 *
 * The committed header is found and the base checked against the identity
 * recorded at create (ident.c): a differencing file is never applied to the wrong
 * base.  Then the map is loaded and validated (load.c, load_v1.c).  A file whose
 * older header slot is damaged (a commit was torn by a crash) opens normally;
 * unless opened read-only its header is rewritten at once so the file is healthy
 * again for `vds-diff check`.  A version-1 file opened for writing becomes version
 * 2 at its first commit (load_v1.c says why that is crash-safe).
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

/* A handle with the committed header m (taken over) and its map loaded. */
int ov_load_handle(int base_fd, int diff_fd, struct ov_meta *m, struct ov_finder *f,
		   struct overlay **out)
{
	struct overlay *ov;
	int ret = ov_handle_new(base_fd, diff_fd, m->block_shift, &ov);

	if (ret) {
		ov_meta_free(m);
		return ret;
	}
	ov->meta = *m;
	m->dir = NULL;
	ov->base_size = ov->meta.base_size;
	ov->want_flags = ov->meta.flags;
	ov_set_geometry(ov, ov->meta.size);
	ret = ov->meta.version == OV1_VERSION ? ov_load_v1(ov, f) : ov_load_v2(ov, f);
	if (ret && (ret != -EBADMSG || !f->problems)) {
		overlay_close(ov);
		return ret;
	}
	*out = ov;
	return ret;
}

int overlay_open(int base_fd, int diff_fd, const struct overlay_open_opts *o,
		 struct overlay **out)
{
	unsigned flags = o ? o->flags : 0;
	char *why = o ? o->why : NULL;
	size_t wl = o ? o->why_len : 0;
	struct last_msg fm = { why, wl };
	struct ov_finder f = { keep_last, &fm, NULL };
	struct ov_meta m;
	struct overlay *ov = NULL;
	bool other_bad;
	int ret;

	if (base_fd < 0 && !(flags & OVERLAY_OPEN_RDONLY))
		return -EBADF;
	ret = ov_load_header(diff_fd, ov_fd_direct(diff_fd), &m, &other_bad, &f);
	if (ret)
		return ret;
	if (base_fd >= 0 && !(flags & OVERLAY_OPEN_NO_IDENTITY))
		ret = check_identity(base_fd, &m, o, why, wl);
	if (ret) {
		ov_meta_free(&m);
		return ret;
	}
	ret = ov_load_handle(base_fd, diff_fd, &m, &f, &ov);
	if (ret)
		return ret;
	ov->rdonly = flags & OVERLAY_OPEN_RDONLY;
	ov->repair_header = other_bad;
	if (ov->repair_header && !ov->rdonly) {
		pthread_mutex_lock(&ov->flush_lock);
		ret = ov_commit(ov, false);
		pthread_mutex_unlock(&ov->flush_lock);
	}
	if (ret) {
		overlay_close(ov);
		return ret;
	}
	*out = ov;
	return 0;
}
