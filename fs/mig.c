/* mig.c - the migration state machine (see mig.h for the flow and the locks).
 *
 * Each migration is a scheduler job: the scheduler decides when it may start (at
 * most four at once, never two sharing a datastore) and the job holds its two
 * datastores until the file has switched, been rolled back or failed. The work runs
 * on a thread of its own; the scheduler thread only starts it.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "beneath.h"
#include "copier.h"
#include "journal.h"
#include "mig.h"
#include "overlay.h"
#include "scheduler.h"
#include "testpoint.h"
#include "vdsfs.h"
#include "vfile.h"

#define MERGE_CHUNK	(1u << MIG_REGION_SHIFT)

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

const char *mig_phase_name(enum mig_phase p)
{
	static const char *const names[] = { "queued", "copying", "converging", "switching",
		"cancelling", "done", "failed", "cancelled" };

	return names[p];
}

static void set_phase(struct mig *m, enum mig_phase p)
{
	pthread_mutex_lock(&m->v->mig_lock);
	m->phase = p;
	pthread_mutex_unlock(&m->v->mig_lock);
}

static void copy_path(struct mig *m, char *out, size_t len)
{
	pthread_mutex_lock(&m->v->mig_lock);
	snprintf(out, len, "%s", m->path);
	pthread_mutex_unlock(&m->v->mig_lock);
}

static int journal(struct mig *m, const char *phase)
{
	pthread_mutex_lock(&m->v->mig_lock);
	m->journal_phase = phase;
	int ret = journal_write(m->v, m, phase);
	pthread_mutex_unlock(&m->v->mig_lock);
	return ret;
}

static int fail(struct mig *m, int err, const char *fmt, const char *detail)
{
	char d[160];

	snprintf(d, sizeof(d), "%s", detail ? detail : strerror(-err));
	pthread_mutex_lock(&m->v->mig_lock);
	if (!m->err) {
		m->err = err;
		snprintf(m->msg, sizeof(m->msg), fmt, d);
	}
	pthread_mutex_unlock(&m->v->mig_lock);
	return err;
}

/* --- overlay on ------------------------------------------------------------- */

/* The migration's own reads of the base (the overlay's fingerprint, the copy) must
 * not make the file look read: its atime is the file's, carried to the destination.
 * Only the owner or root may ask; a daemon that may not keeps the plain open. */
static int open_noatime(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOATIME);

	return fd < 0 && errno == EPERM ? open(path, O_RDWR | O_CLOEXEC) : fd;
}

static int mig_prepare(struct mig *m)
{
	struct datastore *S = &m->v->ds[m->src];
	char fdp[32], diff[48], uuid[64];
	struct overlay_create_opts co = { 0 };
	struct overlay *ov;
	struct stat st;
	int ret;

	fd_path(m->node->fd, fdp);
	m->base_fd = open_noatime(fdp);
	if (m->base_fd < 0 || fstat(m->base_fd, &st) < 0)
		return fail(m, -errno, "cannot open the source: %s", NULL);
	snprintf(uuid, sizeof(uuid), "%s:%lu", m->name, (unsigned long)st.st_ino);
	snprintf(diff, sizeof(diff), "%s.diff", m->name);
	ret = journal(m, "preparing");
	if (ret)
		return fail(m, ret, "cannot write the journal: %s", NULL);
	m->diff_fd = openat(S->state_fd, diff, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (m->diff_fd < 0)
		return fail(m, -errno, "cannot create the differencing file: %s", NULL);
	co.base_uuid = uuid;
	co.size = -1;
	ret = overlay_create(m->base_fd, m->diff_fd, &co, &ov);
	if (ret)
		return fail(m, ret, "cannot create the differencing file: %s", NULL);
	ret = journal(m, "copying");
	if (ret) {
		overlay_close(ov);
		return fail(m, ret, "cannot write the journal: %s", NULL);
	}
	/* Atomic with respect to I/O: in-flight requests finish on the base first. */
	pthread_rwlock_wrlock(&m->vf->gate);
	m->ov = ov;
	m->vf->mig = m;
	pthread_rwlock_unlock(&m->vf->gate);
	testpoint(m, "overlay-on");
	return 0;
}

/* --- copy --------------------------------------------------------------------- */

static void on_copy_progress(void *arg, const struct copier_progress *p)
{
	struct mig *m = arg;

	pthread_mutex_lock(&m->v->mig_lock);
	m->done = p->done;
	m->total = p->total;
	m->rate = p->rate;
	pthread_mutex_unlock(&m->v->mig_lock);
	if (p->done > 0 && p->done < p->total)
		testpoint(m, "mid-copy");
}

static int mig_copy(struct mig *m)
{
	struct datastore *D = &m->v->ds[m->dst];
	struct copier_opts o = { 0 };
	struct copier_result res;
	char tmp[48];
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	int ret;

	snprintf(tmp, sizeof(tmp), "%s.copy", m->name);
	o.rate_limit = m->bwlimit;
	o.limiters[0] = sched_ds_limiter(m->v->sched, m->src);
	o.limiters[1] = sched_ds_limiter(m->v->sched, m->dst);
	o.progress = on_copy_progress;
	o.progress_arg = m;
	o.cancel = &m->cancel;
	ret = copier_copy(m->base_fd, D->state_fd, tmp, &o, &res);
	if (ret)
		return fail(m, ret, "copy failed: %s", res.msg[0] ? res.msg : NULL);
	m->copy_fd = openat(D->state_fd, tmp, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (m->copy_fd < 0)
		return fail(m, -errno, "cannot open the copy: %s", NULL);
	pthread_mutex_lock(&m->v->mig_lock);
	m->copy_ns = now_ns(CLOCK_MONOTONIC) - t0;
	m->done = m->total = res.data_bytes;
	pthread_mutex_unlock(&m->v->mig_lock);
	testpoint(m, "copied");
	return 0;
}

/* --- converge: mirror on, then one pass over what the overlay held ----------------- */

static int merge_chunk(struct mig *m, int target, const struct overlay_extent *e,
		       uint64_t off, size_t len, char *buf)
{
	int ri = (off >> MIG_REGION_SHIFT) % MIG_REGIONS;
	ssize_t n;
	int ret = 0;

	pthread_mutex_lock(&m->region[ri]);
	if (e->state == OVERLAY_ZERO) {
		ret = mig_zero_range(target, off, len);
	} else {
		n = overlay_read(m->ov, buf, len, off);
		if (n < 0)
			ret = (int)n;
		else if (n > 0 && pwrite(target, buf, n, off) != n)
			ret = errno ? -errno : -EIO;
	}
	pthread_mutex_unlock(&m->region[ri]);
	return ret;
}

static int merge_pass(struct mig *m, int target, bool cancellable)
{
	struct overlay_extent e;
	uint64_t cursor = 0;
	char *buf = malloc(MERGE_CHUNK);
	int ret = buf ? 0 : -ENOMEM;

	while (!ret && overlay_next_extent(m->ov, &cursor, &e) == 1) {
		for (uint64_t off = e.off; !ret && off < e.off + e.len;) {
			uint64_t region_end = (off | (MERGE_CHUNK - 1)) + 1;
			uint64_t end = e.off + e.len < region_end ? e.off + e.len : region_end;

			if (cancellable && (atomic_load(&m->cancel) || atomic_load(&m->stopping)))
				ret = -ECANCELED;
			else
				ret = merge_chunk(m, target, &e, off, end - off, buf);
			pthread_mutex_lock(&m->v->mig_lock);
			m->merged_bytes += end - off;
			pthread_mutex_unlock(&m->v->mig_lock);
			off = end;
			testpoint(m, cancellable ? "mid-converge" : "mid-cancel");
		}
	}
	free(buf);
	return ret;
}

static int mirror_on(struct mig *m, int target)
{
	struct overlay_stats st;
	int ret = 0;

	pthread_rwlock_wrlock(&m->vf->gate);
	overlay_stats(m->ov, &st);
	if (ftruncate(target, st.size) < 0)
		ret = -errno;
	else
		m->mirror_fd = target;
	pthread_rwlock_unlock(&m->vf->gate);
	return ret;
}

static int mig_converge(struct mig *m)
{
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	int ret;

	set_phase(m, MIG_CONVERGING);
	ret = journal(m, "converging");
	if (ret)
		return fail(m, ret, "cannot write the journal: %s", NULL);
	ret = mirror_on(m, m->copy_fd);
	if (!ret)
		ret = merge_pass(m, m->copy_fd, true);
	if (!ret && fdatasync(m->copy_fd) < 0)
		ret = -errno;
	if (!ret && (ret = atomic_load(&m->mirror_err)))
		return fail(m, ret, "writing to the destination failed: %s", NULL);
	if (!ret) {
		pthread_mutex_lock(&m->v->mig_lock);
		m->converge_ns = now_ns(CLOCK_MONOTONIC) - t0;
		pthread_mutex_unlock(&m->v->mig_lock);
		testpoint(m, "converged");
	}
	return ret == -ECANCELED ? ret : ret ? fail(m, ret, "merge failed: %s", NULL) : 0;
}

/* --- switch ------------------------------------------------------------------------ */

/* Owner, mode and xattrs as the source has them now (the copier copied the ones at
 * copy time; chmod/chown/setxattr may have happened since). A destination that cannot
 * keep one of them fails the migration: the file must not come out different. */
static int copy_xattrs(struct mig *m, char *names, char *val)
{
	ssize_t len = flistxattr(m->base_fd, names, XATTR_LIST_MAX);

	if (len < 0)
		return errno == ENOTSUP ? 0 : fail(m, -errno, "listing the source's xattrs: %s", NULL);
	for (ssize_t i = 0; i < len; i += strlen(names + i) + 1) {
		ssize_t n = fgetxattr(m->base_fd, names + i, val, XATTR_SIZE_MAX);

		if (n < 0 && errno == ENODATA)
			continue;	/* removed meanwhile */
		if (n < 0 || fsetxattr(m->copy_fd, names + i, val, n, 0) < 0) {
			char why[160];

			snprintf(why, sizeof(why), "%.100s: %s", names + i, strerror(errno));
			return fail(m, -errno, "the destination cannot keep xattr %s", why);
		}
	}
	return 0;
}

static int copy_attrs(struct mig *m)
{
	char *names = malloc(XATTR_LIST_MAX), *val = malloc(XATTR_SIZE_MAX);
	struct stat st;
	int ret = names && val ? 0 : fail(m, -ENOMEM, "copying attributes: %s", NULL);

	if (!ret && fstat(m->base_fd, &st) < 0)
		ret = fail(m, -errno, "reading the source's attributes: %s", NULL);
	if (!ret && (fchown(m->copy_fd, st.st_uid, st.st_gid) < 0 ||
		     fchmod(m->copy_fd, st.st_mode & 07777) < 0))
		ret = fail(m, -errno, "giving the copy the file's owner and mode: %s", NULL);
	if (!ret)
		ret = copy_xattrs(m, names, val);
	free(names);
	free(val);
	return ret;
}

static void set_times(struct mig *m)
{
	struct timespec ts[2];
	struct stat st;
	long long mt = atomic_load(&m->mtime_ns);

	if (fstat(m->base_fd, &st) < 0)
		return;
	ts[0] = st.st_atim;
	ts[1] = st.st_mtim;
	if (mt) {
		ts[1].tv_sec = mt / 1000000000ll;
		ts[1].tv_nsec = mt % 1000000000ll;
	}
	futimens(m->copy_fd, ts);
}

/* Every handle of the file gets a destination fd before anything irreversible. The
 * array is sized by counting the handles under vfile_handles_lock(), which keeps the
 * list as it is until the swap: a file may have any number of handles. */
struct reopen {
	int newfd_path;
	size_t n, cap;
	int err;
	int *fds;
};

static void count_one(struct vhandle *h, void *arg)
{
	(void)h;
	(*(size_t *)arg)++;
}

static void reopen_one(struct vhandle *h, void *arg)
{
	struct reopen *r = arg;
	char p[32];
	int fd;

	if (r->err)
		return;
	assert(r->n < r->cap);
	fd_path(r->newfd_path, p);
	fd = open(p, h->flags);
	if (fd < 0)
		r->err = -errno;
	else
		r->fds[r->n++] = fd;
}

static void swap_one(struct vhandle *h, void *arg)
{
	struct reopen *r = arg;
	int old = h->fd;

	h->fd = r->fds[r->n++];
	r->fds[r->n - 1] = old;		/* closed by the caller; h->flags, h->direct stay */
}

/* With vfile_handles_lock() held: r->fds[0..r->n) are the new fds, one per handle in
 * list order, or the migration has failed with a line naming the step. */
static int reopen_handles(struct mig *m, struct reopen *r)
{
	char why[96];
	size_t n = 0;

	vfile_for_each_handle(m->vf, count_one, &n);
	r->fds = malloc((n ? n : 1) * sizeof(*r->fds));
	if (!r->fds) {
		snprintf(why, sizeof(why), "no memory to reopen %zu open handles", n);
		return fail(m, -ENOMEM, "switch failed: %s", why);
	}
	r->cap = n;
	vfile_for_each_handle(m->vf, reopen_one, r);
	if (!r->err)
		return 0;
	snprintf(why, sizeof(why), "handle %zu of %zu: %s", r->n + 1, n, strerror(-r->err));
	return fail(m, r->err, "switch failed: reopening the open handles on the destination, %s", why);
}

/* The flip itself: called with the gate and ns_lock held exclusive. */
static int flip(struct mig *m, const char *path, int *newfd, struct stat *nst)
{
	struct vds *v = m->v;
	struct datastore *S = &v->ds[m->src], *D = &v->ds[m->dst];
	char tmp[48], parent[4096];
	int ret;

	snprintf(tmp, sizeof(tmp), "%s.copy", m->name);
	vds_parent_path(path, parent, sizeof(parent));
	ret = vds_mkpath(v, m->dst, parent);
	if (ret)
		return ret;
	if (bn_renameat2(D->state_fd, tmp, D->fd, path, 0) < 0)
		return -errno;
	/* From here on the destination is the file: errors only get logged. */
	if (bn_unlinkat(S->fd, path, 0) < 0)
		fuse_log(FUSE_LOG_ERR, "vdsfs: %s: removing the source %s on %s: %s\n", m->name,
			 path, S->name, strerror(errno));
	*newfd = bn_open(D->fd, path, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
	if (*newfd < 0 || fstatat(*newfd, "", nst, AT_EMPTY_PATH) < 0)
		*newfd = openat(D->state_fd, "..", O_PATH | O_CLOEXEC); /* never: keep going */
	return 0;
}

/* A datastore unmounted (even lazily) under the daemon still answers through its
 * fds, but whatever lands there is gone once they close: before the flip both
 * datastores must still be the filesystems mounted at their paths. */
static int ds_still_there(const struct datastore *d)
{
	struct stat a, b;

	if (stat(d->path, &a) < 0 || fstat(d->fd, &b) < 0)
		return -errno;
	return (a.st_dev == b.st_dev && a.st_ino == b.st_ino) ? 0 : -ENODEV;
}

static int check_datastores(struct mig *m)
{
	const struct datastore *d[2] = { &m->v->ds[m->src], &m->v->ds[m->dst] };

	for (int i = 0; i < 2; i++) {
		int ret = ds_still_there(d[i]);

		if (ret) {
			char why[160];

			snprintf(why, sizeof(why), "datastore %s is no longer mounted at %s", d[i]->name,
				 d[i]->path);
			return fail(m, ret, "%s", why);
		}
	}
	return 0;
}

static int mig_switch(struct mig *m)
{
	struct vds *v = m->v;
	char path[4096];
	struct reopen r = { .newfd_path = m->copy_fd };
	struct stat nst;
	int ret, newfd = -1, oldfd = -1;
	uint64_t t0 = now_ns(CLOCK_MONOTONIC), staged_gen;

	ret = check_datastores(m);
	if (ret)
		return ret;
	ret = copy_attrs(m);
	if (ret)
		return ret;
	set_phase(m, MIG_SWITCHING);
	/* Everything slow happens before the pause: flush what the mirror wrote so far
	 * and stage the "switching" record, so the pause only flushes the last
	 * writes and commits the record with a rename. */
	if (fdatasync(m->copy_fd) < 0)
		return fail(m, -errno, "flushing the copy failed: %s", NULL);
	/* The copy's allocations would otherwise all be committed by the one directory
	 * fsync inside the pause. Not syncfs(): under a heavy writer the source holds
	 * gigabytes of dirty differencing-file pages, and writing them back took 15 s
	 * of a 20 s migration (tools/bench/mig-bench.sh). */
	fsync(v->ds[m->dst].state_fd);
	fsync(v->ds[m->src].state_fd);
	pthread_mutex_lock(&v->mig_lock);
	ret = journal_stage(v, m, "switching");
	staged_gen = m->path_gen;
	pthread_mutex_unlock(&v->mig_lock);
	if (ret)
		return fail(m, ret, "cannot write the journal: %s", NULL);
	pthread_rwlock_wrlock(&m->vf->gate);
	pthread_mutex_lock(&v->mig_lock);
	m->flush_ns = now_ns(CLOCK_MONOTONIC) - t0;
	pthread_mutex_unlock(&v->mig_lock);
	t0 = now_ns(CLOCK_MONOTONIC);
	ret = atomic_load(&m->mirror_err);
	if (!ret && (atomic_load(&m->cancel) || atomic_load(&m->stopping)))
		ret = -ECANCELED;
	if (!ret)
		ret = check_datastores(m);
	if (!ret)
		set_times(m);
	/* Every handle gets its destination fd before anything irreversible; the
	 * handle list stays as it is until the swap (vfile.c: vfile_open). */
	vfile_handles_lock();
	if (!ret)
		ret = reopen_handles(m, &r);
	if (!ret) {
		/* A rename during the pause would have made the staged path stale. */
		pthread_mutex_lock(&v->mig_lock);
		ret = m->path_gen != staged_gen ? journal_stage(v, m, "switching") : 0;
		if (!ret)
			ret = journal_commit(v, m);
		if (!ret)
			m->journal_phase = "switching";
		pthread_mutex_unlock(&v->mig_lock);
	}
	if (!ret) {
		testpoint(m, "before-flip");
		pthread_rwlock_wrlock(&v->ns_lock);
		copy_path(m, path, sizeof(path));
		ret = atomic_load(&m->cancel) ? -ECANCELED : flip(m, path, &newfd, &nst);
		pthread_rwlock_unlock(&v->ns_lock);
	}
	if (!ret) {
		oldfd = node_rebind_file(&v->nodes, m->node, m->dst, newfd, &nst);
		r.n = 0;
		vfile_for_each_handle(m->vf, swap_one, &r);
		m->vf->mig = NULL;
		m->mirror_fd = -1;
	}
	vfile_handles_unlock();
	pthread_rwlock_unlock(&m->vf->gate);
	for (size_t i = 0; i < r.n; i++)
		close(r.fds[i]);
	free(r.fds);
	if (ret) {
		if (ret == -ECANCELED)
			return ret;
		return fail(m, ret, "switch failed: %s", NULL);
	}
	close(oldfd);
	testpoint(m, "after-flip");
	pthread_mutex_lock(&v->mig_lock);
	m->pause_ns = now_ns(CLOCK_MONOTONIC) - t0;
	pthread_mutex_unlock(&v->mig_lock);
	fsync(v->ds[m->dst].fd);
	return 0;
}

/* --- roll back: mirror into the base, one pass, drop the overlay -------------------- */

static int mig_rollback(struct mig *m)
{
	int ret;

	set_phase(m, MIG_CANCELLING);
	/* Informational only: recovery rolls back "copying" and "converging" alike, so
	 * a full source that cannot take the record must not stop the rollback. */
	journal(m, "cancelling");
	ret = mirror_on(m, m->base_fd);
	if (!ret)
		ret = merge_pass(m, m->base_fd, false);
	if (!ret)
		ret = atomic_load(&m->mirror_err);
	pthread_rwlock_wrlock(&m->vf->gate);
	if (!ret && fdatasync(m->base_fd) < 0)
		ret = -errno;
	if (!ret) {
		m->vf->mig = NULL;
		m->mirror_fd = -1;
	}
	pthread_rwlock_unlock(&m->vf->gate);
	return ret;
}

/* --- the thread ------------------------------------------------------------------- */

static void release_io(struct mig *m, bool keep_files)
{
	if (m->ov)
		overlay_close(m->ov);
	m->ov = NULL;
	if (m->base_fd >= 0)
		close(m->base_fd);
	if (m->diff_fd >= 0)
		close(m->diff_fd);
	if (m->copy_fd >= 0)
		close(m->copy_fd);
	m->base_fd = m->diff_fd = m->copy_fd = -1;
	if (!keep_files)
		mig_drop_files(m);
}

/* Differencing file, copy (with its checkpoint) and journal, in that order: the
 * journal goes last, so a crash in between leaves a record recovery can act on. */
void mig_drop_files(struct mig *m)
{
	struct datastore *S = &m->v->ds[m->src], *D = &m->v->ds[m->dst];
	char name[48];

	snprintf(name, sizeof(name), "%s.diff", m->name);
	unlinkat(S->state_fd, name, 0);
	testpoint(m, "cleanup");
	snprintf(name, sizeof(name), "%s.copy", m->name);
	copier_discard(D->state_fd, name);
	fsync(D->state_fd);
	journal_remove(m->v, m);	/* fsyncs the source's state folder */
}

static void finish(struct mig *m, enum mig_phase phase, int status)
{
	struct vds *v = m->v;

	pthread_mutex_lock(&v->mig_lock);
	m->phase = phase;
	m->ended_ns = now_ns(CLOCK_REALTIME);
	mig_finished_locked(v, m);
	pthread_mutex_unlock(&v->mig_lock);
	if (m->sjob)
		sched_job_done(m->sjob, status, status ? m->msg : NULL);
	if (m->stuck)
		return;	/* keeps its vfile and node: I/O still goes through m */
	node_unpin(&v->nodes, m->node);
	vfile_put(v, m->vf);
	m->vf = NULL;
}

/* Daemon shutdown, no I/O any more: a stuck migration finally lets go. */
void mig_release_stuck(struct mig *m)
{
	if (!m->stuck)
		return;
	m->vf->mig = NULL;
	release_io(m, true);
	node_unpin(&m->v->nodes, m->node);
	vfile_put(m->v, m->vf);
	m->vf = NULL;
	m->stuck = false;
}

static void mig_run(struct mig *m)
{
	bool overlay_on = false;
	int ret;

	ret = mig_prepare(m);
	overlay_on = m->ov != NULL;
	if (!ret)
		ret = mig_copy(m);
	if (!ret)
		ret = mig_converge(m);
	if (!ret)
		ret = mig_switch(m);
	if (!ret) {
		uint64_t t0 = now_ns(CLOCK_MONOTONIC);

		release_io(m, false);
		pthread_mutex_lock(&m->v->mig_lock);
		m->cleanup_ns = now_ns(CLOCK_MONOTONIC) - t0;
		pthread_mutex_unlock(&m->v->mig_lock);
		finish(m, MIG_DONE, 0);
		return;
	}
	if (atomic_load(&m->stopping)) {
		/* Daemon shutdown: the journal tells the next mount to roll back. */
		pthread_rwlock_wrlock(&m->vf->gate);
		m->vf->mig = NULL;
		pthread_rwlock_unlock(&m->vf->gate);
		release_io(m, true);
		finish(m, MIG_FAILED, -ESHUTDOWN);
		return;
	}
	if (overlay_on) {
		int rb = mig_rollback(m);

		if (rb) {
			/* The overlay stays the file's route: dropping it now would lose
			 * what only the differencing file holds. The next mount retries. */
			fail(m, rb, "rollback failed, the file keeps its overlay until the next mount: %s", NULL);
			m->stuck = true;
			finish(m, MIG_FAILED, rb);
			return;
		}
	}
	release_io(m, false);
	if (ret == -ECANCELED)
		finish(m, MIG_CANCELLED, -ECANCELED);
	else
		finish(m, MIG_FAILED, ret);
}

/* The last thing the thread does is say so: from then on the record may be freed
 * (mig_ctl.c joins the thread first). */
static void *mig_thread(void *arg)
{
	struct mig *m = arg;

	mig_run(m);
	pthread_mutex_lock(&m->v->mig_lock);
	m->thread_exited = true;
	pthread_mutex_unlock(&m->v->mig_lock);
	return NULL;
}

void mig_thread_start(struct mig *m)
{
	pthread_mutex_lock(&m->v->mig_lock);
	m->thread_started = pthread_create(&m->thread, NULL, mig_thread, m) == 0;
	pthread_mutex_unlock(&m->v->mig_lock);
	if (m->thread_started)
		return;
	fail(m, -EAGAIN, "cannot start a thread: %s", NULL);
	finish(m, MIG_FAILED, -EAGAIN);
}

/* With v->mig_lock held: a rename changed m->path. */
int journal_rewrite_locked(struct vds *v, struct mig *m)
{
	return m->journal_phase ? journal_write(v, m, m->journal_phase) : 0;
}
