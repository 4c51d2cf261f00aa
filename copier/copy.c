/* copy.c -- one file copy from start to durable end: copier_copy().
 *
 * Order of work, and why:
 *  1. reopen the source through /proc/self/fd so SEEK_DATA/SEEK_HOLE and
 *     O_DIRECT never touch the caller's open file description;
 *  2. decide fresh vs resume: a checkpoint is trusted only if it names the
 *     same source (dev, ino, size, mtime) and the partial file exists;
 *  3. check free space, set the destination's size (the rest stays holes);
 *  4. engine.c moves the data;
 *  5. truncate away O_DIRECT tail padding, then owner, mode, times (owner
 *     before mode: chown clears set-id bits), fsync the file, fsync the
 *     directory, optionally verify, drop the checkpoint.
 * The destination is created 0600 and gets the source's mode only at step 5,
 * so nobody mistakes a partial copy for a usable file; on failure it is
 * unlinked unless keep_partial asks to keep it (with its checkpoint) for a
 * later resume.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static int reopen_fd(int fd, int flags)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, flags | O_CLOEXEC);
}

/* Reading should not even touch the source's atime, but only the owner (or
 * root) may ask for O_NOATIME. */
int reopen_noatime(int fd, int flags)
{
	int r = reopen_fd(fd, flags | O_NOATIME);

	return r < 0 && errno == EPERM ? reopen_fd(fd, flags) : r;
}

static void side_close(struct side *sd)
{
	if (sd->buf_fd >= 0)
		close(sd->buf_fd);
	if (sd->dio_fd >= 0)
		close(sd->dio_fd);
	sd->buf_fd = sd->dio_fd = -1;
}

static int open_src(int src_fd, const struct copier_opts *o, struct side *sd,
		    struct copier_result *res)
{
	sd->buf_fd = reopen_noatime(src_fd, O_RDONLY);
	if (sd->buf_fd < 0)
		return copier_fail(res, -errno, "reopening source");
	sd->dio_fd = o->no_direct ? -1 : reopen_noatime(src_fd, O_RDONLY | O_DIRECT);
	return 0;
}

static bool ckpt_matches(const struct ckpt *c, const struct stat *st)
{
	return c->src_dev == (uint64_t)st->st_dev && c->src_ino == (uint64_t)st->st_ino &&
	       c->src_size == (uint64_t)st->st_size &&
	       c->src_mtime_sec == (int64_t)st->st_mtim.tv_sec &&
	       c->src_mtime_nsec == (int64_t)st->st_mtim.tv_nsec;
}

/* Returns the offset to resume from, 0 for a fresh copy. */
/* Where a copy of st may resume at dirfd/rel: 0 with *off set (aligned down), or
 * -ENOENT when there is no checkpoint, -ESTALE with why when there is one that cannot
 * be trusted (another source, a partial copy shorter than it says). */
static int resume_check(int dirfd, const char *rel, const struct stat *st, uint64_t *off,
			char *why, size_t len)
{
	struct stat dst;
	struct ckpt c;

	if (ckpt_read(dirfd, rel, &c) < 0) {
		snprintf(why, len, "no usable checkpoint beside %s", rel);
		return -ENOENT;
	}
	if (!ckpt_matches(&c, st)) {
		snprintf(why, len, "the checkpoint of %s names another source file", rel);
		return -ESTALE;
	}
	if (fstatat(dirfd, rel, &dst, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(dst.st_mode)) {
		snprintf(why, len, "the partial copy %s is gone", rel);
		return -ESTALE;
	}
	if ((uint64_t)dst.st_size < c.done_off || c.done_off > (uint64_t)st->st_size) {
		snprintf(why, len, "the partial copy %s is shorter than its checkpoint says", rel);
		return -ESTALE;
	}
	*off = align_down(c.done_off, COPIER_ALIGN);
	return 0;
}

static uint64_t resume_point(int dirfd, const char *rel, const struct stat *st)
{
	uint64_t off = 0;
	char why[8];

	return resume_check(dirfd, rel, st, &off, why, sizeof(why)) ? 0 : off;
}

int copier_resume_point(int src_fd, int dst_dirfd, const char *dst_rel, uint64_t *off,
			char *why, size_t len)
{
	struct stat st;

	if (fstat(src_fd, &st) < 0) {
		snprintf(why, len, "reading the source: %s", strerror(errno));
		return -errno;
	}
	return resume_check(dst_dirfd, dst_rel, &st, off, why, len);
}

static int open_dst(struct engine_job *ej, bool fresh)
{
	int flags = O_WRONLY | O_CLOEXEC | O_NOFOLLOW | (fresh ? O_CREAT | O_TRUNC : 0);

	ej->dst.buf_fd = openat(ej->dst_dirfd, ej->dst_rel, flags, 0600);
	if (ej->dst.buf_fd < 0)
		return copier_fail(ej->res, -errno, "creating destination %s", ej->dst_rel);
	ej->dst_opened = true;
	ej->dst.dio_fd = ej->o->no_direct ? -1 : reopen_fd(ej->dst.buf_fd, O_WRONLY | O_DIRECT);
	return 0;
}

static uint64_t data_below(int fd, uint64_t end)
{
	uint64_t off = 0, s, e, sum = 0;

	while (extent_next(fd, off, end, &s, &e) > 0) {
		sum += e - s;
		off = e;
	}
	return sum;
}

static int prepare(struct engine_job *ej, const struct stat *st)
{
	const struct copier_opts *o = ej->o;
	int r;

	ej->start_off = o->resume ? resume_point(ej->dst_dirfd, ej->dst_rel, st) : 0;
	if (!ej->start_off && (r = ckpt_remove(ej->dst_dirfd, ej->dst_rel)) < 0)
		return copier_fail(ej->res, r, "removing stale checkpoint");
	if (!o->no_space_check) {
		r = copier_check_space(ej->src.buf_fd, ej->dst_dirfd, ej->dst_rel,
				       o->space_margin ? o->space_margin : 64ull << 20,
				       ej->res->msg, sizeof(ej->res->msg));
		if (r)
			return ej->res->err = r;
	}
	r = open_dst(ej, ej->start_off == 0);
	if (r)
		return r;
	if (ftruncate(ej->dst.buf_fd, (off_t)ej->size) < 0)
		return copier_fail(ej->res, -errno, "sizing destination");
	r = extent_data_bytes(ej->src.buf_fd, ej->size, &ej->data_total);
	if (r)
		return copier_fail(ej->res, r, "mapping source data");
	ej->done_before = data_below(ej->src.buf_fd, ej->start_off);
	ej->src.direct = ej->src.dio_fd >= 0;
	ej->dst.direct = ej->dst.dio_fd >= 0;
	ej->res->resumed_from = ej->start_off;
	ej->res->data_bytes = ej->data_total;
	return 0;
}

static int apply_metadata(struct engine_job *ej, const struct stat *st)
{
	int fd = ej->dst.buf_fd;
	struct timespec ts[2] = { st->st_atim, st->st_mtim };

	if (ftruncate(fd, (off_t)ej->size) < 0)
		return copier_fail(ej->res, -errno, "setting destination size");
	if (fchown(fd, st->st_uid, st->st_gid) < 0) {
		if (errno != EPERM || geteuid() == 0)
			return copier_fail(ej->res, -errno, "setting destination owner");
		ej->res->flags |= COPIER_WARN_OWNER;
	}
	if (fchmod(fd, st->st_mode & 07777) < 0)
		return copier_fail(ej->res, -errno, "setting destination mode");
	if (futimens(fd, ts) < 0)
		return copier_fail(ej->res, -errno, "setting destination times");
	return 0;
}

/* The name we wrote must still be our inode: else the destination vanished
 * or was replaced and our data is not where the caller will look. */
static int check_still_there(struct engine_job *ej)
{
	struct stat a, b;

	if (fstat(ej->dst.buf_fd, &a) < 0)
		return copier_fail(ej->res, -errno, "stat of destination");
	if (fstatat(ej->dst_dirfd, ej->dst_rel, &b, AT_SYMLINK_NOFOLLOW) < 0)
		return copier_fail(ej->res, -errno, "destination %s vanished", ej->dst_rel);
	if (a.st_ino != b.st_ino || a.st_dev != b.st_dev)
		return copier_fail(ej->res, -ESTALE, "destination %s was replaced", ej->dst_rel);
	return 0;
}

static int verify(struct engine_job *ej)
{
	uint64_t a, b;
	int r, fd;

	r = checksum_own_fd(ej->src.buf_fd, &a);
	if (r)
		return copier_fail(ej->res, r, "verify: reading source");
	fd = reopen_noatime(ej->dst.buf_fd, O_RDONLY);
	if (fd < 0)
		return copier_fail(ej->res, -errno, "verify: reopening destination");
	r = checksum_own_fd(fd, &b);
	close(fd);
	if (r)
		return copier_fail(ej->res, r, "verify: reading destination");
	if (a != b)
		return copier_fail(ej->res, -EIO, "verify: checksum mismatch (source %016llx, destination %016llx)",
				   (unsigned long long)a, (unsigned long long)b);
	ej->res->checksum = a;
	return 0;
}

static int finish(struct engine_job *ej, const struct stat *st)
{
	int r;

	r = apply_metadata(ej, st);
	if (!r && fsync(ej->dst.buf_fd) < 0)
		r = copier_fail(ej->res, -errno, "fsync of destination");
	if (!r && fsync(ej->dst_dirfd) < 0 && errno != EINVAL)
		r = copier_fail(ej->res, -errno, "fsync of destination directory");
	if (!r)
		r = check_still_there(ej);
	if (!r && ej->o->verify)
		r = verify(ej);
	if (!r)
		r = ckpt_remove(ej->dst_dirfd, ej->dst_rel);
	return r;
}

static int copy_opened(int src_fd, const struct stat *st, struct engine_job *ej)
{
	int r;

	r = open_src(src_fd, ej->o, &ej->src, ej->res);
	if (!r)
		r = prepare(ej, st);
	if (!r)
		r = engine_run(ej);
	if (!r && ej->src.dio_fd >= 0 && ej->dst.dio_fd >= 0 && ej->src.direct && ej->dst.direct)
		ej->res->flags |= COPIER_USED_DIRECT;
	if (!r)
		r = finish(ej, st);
	return r;
}

int copier_copy(int src_fd, int dst_dirfd, const char *dst_rel,
		const struct copier_opts *opts, struct copier_result *res)
{
	struct copier_opts defaults = { 0 };
	struct copier_result local;
	struct engine_job ej;
	struct stat st;
	int r;

	if (!opts)
		opts = &defaults;
	if (!res)
		res = &local;
	memset(res, 0, sizeof(*res));
	memset(&ej, 0, sizeof(ej));
	ej.src.buf_fd = ej.src.dio_fd = ej.dst.buf_fd = ej.dst.dio_fd = -1;
	ej.o = opts;
	ej.res = res;
	ej.dst_dirfd = dst_dirfd;
	ej.dst_rel = dst_rel;
	if (fstat(src_fd, &st) < 0)
		return copier_fail(res, -errno, "stat of source");
	if (!S_ISREG(st.st_mode))
		return copier_fail(res, -EINVAL, "source is not a regular file");
	ej.size = res->size = (uint64_t)st.st_size;
	ej.ck = (struct ckpt){ .src_dev = st.st_dev, .src_ino = st.st_ino,
			       .src_size = (uint64_t)st.st_size,
			       .src_mtime_sec = st.st_mtim.tv_sec,
			       .src_mtime_nsec = st.st_mtim.tv_nsec };
	if (opts->rate_limit && !(ej.job_lim = copier_limiter_new(opts->rate_limit)))
		return copier_fail(res, -ENOMEM, "rate limiter");
	r = copy_opened(src_fd, &st, &ej);
	side_close(&ej.src);
	side_close(&ej.dst);
	copier_limiter_free(ej.job_lim);
	/* A copy that never opened its destination has nothing to clean up, and
	 * must not delete a partial copy someone else may resume. */
	if (r && ej.dst_opened && !opts->keep_partial)
		copier_discard(dst_dirfd, dst_rel);
	return r;
}

int copier_copy_at(int src_dirfd, const char *src_rel, int dst_dirfd,
		   const char *dst_rel, const struct copier_opts *opts,
		   struct copier_result *res)
{
	int fd = openat(src_dirfd, src_rel, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0) {
		r = -errno;
		if (res) {
			memset(res, 0, sizeof(*res));
			copier_fail(res, r, "opening source %s", src_rel);
		}
		return r;
	}
	r = copier_copy(fd, dst_dirfd, dst_rel, opts, res);
	close(fd);
	return r;
}

int copier_discard(int dst_dirfd, const char *dst_rel)
{
	int r = ckpt_remove(dst_dirfd, dst_rel);

	if (unlinkat(dst_dirfd, dst_rel, 0) < 0 && errno != ENOENT)
		return -errno;
	return r;
}
