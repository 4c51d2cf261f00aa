/* mig_switch.c - the switch: the file's I/O pauses, the copy becomes the file.
 *
 * Called by the migration thread once the copy is complete and every write is
 * mirrored into it (mig.c). Everything slow, and everything that can fail, is done
 * before the point of no return; the steps and what holds after each:
 *
 * Before the pause (the file's I/O goes on; a failure rolls the migration back):
 *  1. Both datastores are still mounted where they were; the copy has the source's
 *     owner, mode and xattrs.
 *  2. The copy's data and both state folders are durable; the "switching" record is
 *     staged beside the journal (durable, not yet current).
 *  3. An O_PATH fd on the copy and its stat are taken: an fd follows the inode
 *     across the rename, so nothing after it needs to look the file up.
 * The pause (the file's gate held exclusive: no read, write or resize of it runs):
 *  4. No mirror write failed; no cancel, no shutdown; datastores still mounted.
 *  5. The copy has the file's times (no write can move them any more).
 *  6. vfile_lock held: no handle comes or goes; each has a second fd, on the copy.
 *  7. ns_lock exclusive: no name changes and no lookups until the pause ends. The
 *     source path still names the migrating inode: if the file was unlinked or
 *     replaced (renamed over) the migration ends cancelled, nothing to move, and
 *     nothing is resurrected or clobbered. The destination path is free, its folder
 *     exists, and both folders are open (for the fsyncs of step 12).
 *  8. Commit: the record (restaged if a rename changed the path) becomes the
 *     journal. Recovery now rolls forward: the copy, complete and durable, is the
 *     file, since the mirror keeps it equal to the file while the gate is held.
 *  9. The copy is renamed into place: the POINT OF NO RETURN. If the commit's fsync
 *     or this rename fails, the journal is put back to "converging" and the
 *     migration rolls back as before step 8; if even that fails the file keeps its
 *     overlay, whose mirror keeps the copy what the journal says it is ("stuck"),
 *     and the next mount finishes the switch.
 * 10. The source is unlinked. If that fails the file is switched all the same: the
 *     stale source, which would shadow the file from an earlier datastore, is hidden
 *     from lookups (mig_hides) and removed by retries after the pause (or, from the
 *     journal, by the next mount).
 * 11. Node and handles point at the destination; overlay and mirror are off. Cannot
 *     fail: everything it needs was made in steps 3 and 6.
 * After the pause:
 * 12. The rename and the unlink are made durable (fsync of both folders).
 * 13. mig.c cleans up: differencing file, copy leftovers, then the journal, which
 *     goes only if 10, 12 and 13 all succeeded. Otherwise it stays "switching" and
 *     the next mount finishes (recover.c: roll_forward is idempotent and removes a
 *     source only if it is still the migrated inode).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "beneath.h"
#include "journal.h"
#include "mig.h"
#include "mig_int.h"
#include "testpoint.h"
#include "vdsfs.h"
#include "vfile.h"

static pthread_cond_t retry_cond = PTHREAD_COND_INITIALIZER;	/* with v->mig_lock */

/* Owner, mode and xattrs as the source has them now (the copier copied the ones at
 * copy time; chmod/chown/setxattr may have happened since). A destination that cannot
 * keep one of them fails the migration: the file must not come out different. */
static int copy_xattrs(struct mig *m, char *names, char *val)
{
	ssize_t len = flistxattr(m->base_fd, names, XATTR_LIST_MAX);

	if (len < 0)
		return errno == ENOTSUP ? 0 : mig_fail(m, -errno, "listing the source's xattrs: %s", NULL);
	for (ssize_t i = 0; i < len; i += strlen(names + i) + 1) {
		ssize_t n = fgetxattr(m->base_fd, names + i, val, XATTR_SIZE_MAX);

		if (n < 0 && errno == ENODATA)
			continue;	/* removed meanwhile */
		if (n < 0 || fsetxattr(m->copy_fd, names + i, val, n, 0) < 0) {
			char why[160];

			snprintf(why, sizeof(why), "%.100s: %s", names + i, strerror(errno));
			return mig_fail(m, -errno, "the destination cannot keep xattr %s", why);
		}
	}
	return 0;
}

static int copy_attrs(struct mig *m)
{
	char *names = malloc(XATTR_LIST_MAX), *val = malloc(XATTR_SIZE_MAX);
	struct stat st;
	int ret = names && val ? 0 : mig_fail(m, -ENOMEM, "copying attributes: %s", NULL);

	if (!ret && fstat(m->base_fd, &st) < 0)
		ret = mig_fail(m, -errno, "reading the source's attributes: %s", NULL);
	if (!ret && (fchown(m->copy_fd, st.st_uid, st.st_gid) < 0 ||
		     fchmod(m->copy_fd, st.st_mode & 07777) < 0))
		ret = mig_fail(m, -errno, "giving the copy the file's owner and mode: %s", NULL);
	if (!ret)
		ret = copy_xattrs(m, names, val);
	free(names);
	free(val);
	return ret;
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
			return mig_fail(m, ret, "%s", why);
		}
	}
	return 0;
}

/* Step 5. */
static int set_times(struct mig *m)
{
	struct timespec ts[2];
	struct stat st;
	long long mt = atomic_load(&m->mtime_ns);

	if (fstat(m->base_fd, &st) < 0)
		return mig_fail(m, -errno, "reading the source's times: %s", NULL);
	ts[0].tv_sec = atomic_load(&m->atime_ns) / 1000000000ll;
	ts[0].tv_nsec = atomic_load(&m->atime_ns) % 1000000000ll;
	ts[1] = st.st_mtim;
	if (mt) {
		ts[1].tv_sec = mt / 1000000000ll;
		ts[1].tv_nsec = mt % 1000000000ll;
	}
	if (futimens(m->copy_fd, ts) < 0)
		return mig_fail(m, -errno, "giving the copy the file's times: %s", NULL);
	return 0;
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
		return mig_fail(m, -ENOMEM, "switch failed: %s", why);
	}
	r->cap = n;
	vfile_for_each_handle(m->vf, reopen_one, r);
	if (!r->err)
		return 0;
	snprintf(why, sizeof(why), "handle %zu of %zu: %s", r->n + 1, n, strerror(-r->err));
	return mig_fail(m, r->err, "switch failed: reopening the open handles on the destination, %s", why);
}

/* What the pause needs, all made before anything irreversible. */
struct flip {
	char copy[48];			/* "mig-N.copy" in the destination's .vdsfs */
	char path[PATH_MAX];		/* the file's path, frozen under ns_lock */
	const char *name;		/* its last component */
	int newfd;			/* O_PATH on the copy: the node's fd afterwards */
	struct stat nst;
	int dparent, sparent;		/* the file's folder on each datastore */
	unsigned staged_gen;
	struct reopen r;
	bool stale;			/* the source could not be removed (step 10) */
};

static int cancel_with(struct mig *m, const char *why)
{
	pthread_mutex_lock(&m->v->mig_lock);
	if (!m->msg[0])
		snprintf(m->msg, sizeof(m->msg), "%s", why);
	pthread_mutex_unlock(&m->v->mig_lock);
	atomic_store(&m->cancel, true);
	return -ECANCELED;
}

/* Steps 1-3. */
static int before_pause(struct mig *m, struct flip *f)
{
	struct vds *v = m->v;
	char p[32];
	int ret = check_datastores(m);

	if (!ret)
		ret = copy_attrs(m);
	if (ret)
		return ret;
	mig_set_phase(m, MIG_SWITCHING);
	/* Everything slow happens before the pause: flush what the mirror wrote so far
	 * and stage the "switching" record, so the pause only commits the record. */
	if (fdatasync(m->copy_fd) < 0)
		return mig_fail(m, -errno, "flushing the copy failed: %s", NULL);
	/* The copy's allocations would otherwise all be committed by the one directory
	 * fsync inside the pause. Not syncfs(): under a heavy writer the source holds
	 * gigabytes of dirty differencing-file pages, and writing them back took 15 s
	 * of a 20 s migration (tools/bench/mig-bench.sh). */
	if (fsync(v->ds[m->dst].state_fd) < 0 || fsync(v->ds[m->src].state_fd) < 0)
		return mig_fail(m, -errno, "syncing the state folders failed: %s", NULL);
	pthread_mutex_lock(&v->mig_lock);
	ret = journal_stage(v, m, "switching");
	f->staged_gen = m->path_gen;
	pthread_mutex_unlock(&v->mig_lock);
	if (ret)
		return mig_fail(m, ret, "cannot write the journal: %s", NULL);
	fd_path(m->copy_fd, p);
	f->newfd = open(p, O_PATH | O_CLOEXEC);
	if (f->newfd < 0 || fstat(f->newfd, &f->nst) < 0)
		return mig_fail(m, -errno, "opening the copy for the switch: %s", NULL);
	/* Unlink and rename no longer cancel a migration from here on: step 7 checks. */
	testpoint(m, "switching");
	return 0;
}

static int open_folder(struct vds *v, int ds, const char *path)
{
	char parent[PATH_MAX];

	vds_parent_path(path, parent, sizeof(parent));
	return bn_open(v->ds[ds].fd, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
}

/* Step 7, under ns_lock exclusive. */
static int check_names(struct mig *m, struct flip *f)
{
	struct vds *v = m->v;
	struct datastore *S = &v->ds[m->src], *D = &v->ds[m->dst];
	char parent[PATH_MAX], why[PATH_MAX + 96];
	struct stat st;
	int ret;

	mig_copy_path(m, f->path, sizeof(f->path));
	f->name = strrchr(f->path, '/') ? strrchr(f->path, '/') + 1 : f->path;
	if (bn_fstatat(S->fd, f->path, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT && errno != ENOTDIR)
			return mig_fail(m, -errno, "checking the source before the switch: %s", NULL);
		/* Renamed over by a file of another datastore, or just removed. */
		if (vds_find(v, f->path, &st) >= 0)
			return cancel_with(m, "the file was replaced during the switch: nothing to move");
		return cancel_with(m, "the file was removed during the switch: nothing to move");
	}
	if (st.st_dev != m->src_dev || st.st_ino != m->src_ino)
		return cancel_with(m, "the file was replaced during the switch: nothing to move");
	ret = bn_fstatat(D->fd, f->path, &st, AT_SYMLINK_NOFOLLOW) < 0 ? errno : 0;
	if (ret != ENOENT && ret != ENOTDIR) {
		snprintf(why, sizeof(why), "datastore %s: %.*s: %s", D->name, PATH_MAX - 1, f->path,
			 ret ? strerror(ret) : "already there (a file the union hides)");
		return mig_fail(m, ret ? -ret : -EEXIST, "switch failed: %s", why);
	}
	vds_parent_path(f->path, parent, sizeof(parent));
	ret = vds_mkpath(v, m->dst, parent);
	if (ret)
		return mig_fail(m, ret, "creating the file's folder on the destination: %s", NULL);
	f->dparent = open_folder(v, m->dst, f->path);
	f->sparent = f->dparent < 0 ? -1 : open_folder(v, m->src, f->path);
	if (f->sparent < 0)
		return mig_fail(m, -errno, "opening the file's folders for the switch: %s", NULL);
	return 0;
}

/* Steps 8-9 failed once the record may be current. Rolling back stops mirroring
 * into the copy, which is only safe once the journal no longer promises it. */
static int undo_commit(struct mig *m, int err, const char *what)
{
	char why[200];
	int ret;

	pthread_mutex_lock(&m->v->mig_lock);
	ret = testfail("journal-revert");
	if (!ret)
		ret = journal_write(m->v, m, "converging");
	m->journal_phase = ret ? "switching" : "converging";
	m->stuck = ret != 0;	/* mig.c leaves the overlay and its mirror in place */
	pthread_mutex_unlock(&m->v->mig_lock);
	snprintf(why, sizeof(why), "%s: %s", what, strerror(-err));
	if (!ret)
		return mig_fail(m, err, "switch failed: %s", why);
	return mig_fail(m, err, "switch failed after its journal was committed (%s); the file "
			"keeps its overlay, mirrored to the copy, and the next mount finishes the switch",
			why);
}

/* Steps 8-10, under ns_lock exclusive. 0: the copy is the file. */
static int commit_and_flip(struct mig *m, struct flip *f)
{
	struct vds *v = m->v;
	struct datastore *S = &v->ds[m->src], *D = &v->ds[m->dst];
	bool current = false;
	int ret;

	pthread_mutex_lock(&v->mig_lock);
	ret = m->path_gen != f->staged_gen ? journal_stage(v, m, "switching") : 0;
	if (!ret)
		ret = journal_commit(v, m, &current);
	if (!ret)
		ret = testfail("commit");
	if (current)
		m->journal_phase = "switching";
	pthread_mutex_unlock(&v->mig_lock);
	if (ret && !current)
		return mig_fail(m, ret, "cannot write the journal: %s", NULL);
	if (ret)
		return undo_commit(m, ret, "committing the journal");
	testpoint(m, "before-flip");
	ret = testfail("flip-rename");
	if (!ret && bn_renameat2(D->state_fd, f->copy, D->fd, f->path, 0) < 0)
		ret = -errno;
	if (ret)
		return undo_commit(m, ret, "renaming the copy into place");
	/* The destination is the file from here on. */
	ret = testfail("flip-unlink");
	if (!ret && unlinkat(f->sparent, f->name, 0) < 0)
		ret = -errno;
	if (ret) {
		fuse_log(FUSE_LOG_ERR, "vdsfs: %s: removing the source %s on %s: %s; it is hidden "
			 "and removal is retried\n", m->name, f->path, S->name, strerror(-ret));
		pthread_mutex_lock(&v->mig_lock);
		mig_set_stale_locked(m, true);
		snprintf(m->msg, sizeof(m->msg), "switched; the old file on %s could not be removed "
			 "(%s): hidden, retrying", S->name, strerror(-ret));
		pthread_mutex_unlock(&v->mig_lock);
		f->stale = true;
	}
	return 0;
}

/* Step 11: cannot fail. */
static void point_at_destination(struct mig *m, struct flip *f, int *oldfd)
{
	assert(m->journal_phase && !strcmp(m->journal_phase, "switching"));
	assert(f->r.n == f->r.cap && f->newfd >= 0);
	*oldfd = node_rebind_file(&m->v->nodes, m->node, m->dst, f->newfd, &f->nst);
	f->newfd = -1;		/* the node's now */
	f->r.n = 0;
	vfile_for_each_handle(m->vf, swap_one, &f->r);
	m->vf->mig = NULL;
	m->mirror_fd = -1;
}

/* Step 12. Failing, the journal stays for the next mount. */
static int make_durable(struct mig *m, struct flip *f)
{
	int ret = testfail("flip-sync");

	if (!ret && (fsync(f->dparent) < 0 || (!f->stale && fsync(f->sparent) < 0)))
		ret = -errno;
	if (ret)
		fuse_log(FUSE_LOG_ERR, "vdsfs: %s: syncing the folders of %s after the switch: %s; "
			 "the journal stays for the next mount\n", m->name, f->path, strerror(-ret));
	return ret;
}

/* After step 10 failed: retry removing the stale source (hidden meanwhile) with a
 * growing wait, until it goes or the daemon stops. It is found through its folder's
 * fd by its name, which only a rename of a folder above it changes (that moves the
 * folder, fd and all); and removed only if it still is the migrated inode. */
static int remove_stale(struct mig *m, struct flip *f)
{
	struct vds *v = m->v;
	unsigned wait_s = 1;
	int ret = -ESHUTDOWN;

	while (!atomic_load(&m->stopping)) {
		struct timespec until;
		struct stat st;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += wait_s;
		pthread_mutex_lock(&v->mig_lock);
		while (!atomic_load(&m->stopping) &&
		       pthread_cond_timedwait(&retry_cond, &v->mig_lock, &until) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&v->mig_lock);
		testpoint(m, "unlink-retry");
		if (atomic_load(&m->stopping))
			break;
		pthread_rwlock_wrlock(&v->ns_lock);
		if (fstatat(f->sparent, f->name, &st, AT_SYMLINK_NOFOLLOW) < 0 ?
		    errno == ENOENT : st.st_dev != m->src_dev || st.st_ino != m->src_ino)
			ret = 0;	/* gone already (a rename over it dropped it) */
		else
			ret = unlinkat(f->sparent, f->name, 0) < 0 ? -errno : 0;
		pthread_rwlock_unlock(&v->ns_lock);
		if (!ret)
			ret = fsync(f->sparent) < 0 ? -errno : 0;
		if (!ret)
			break;
		fuse_log(FUSE_LOG_ERR, "vdsfs: %s: removing the old file %s: %s; retrying in %u s\n",
			 m->name, f->name, strerror(-ret), wait_s * 2 > 60 ? 60 : wait_s * 2);
		wait_s = wait_s * 2 > 60 ? 60 : wait_s * 2;
	}
	pthread_mutex_lock(&v->mig_lock);
	if (!ret) {
		mig_set_stale_locked(m, false);
		m->msg[0] = 0;
	} else {
		snprintf(m->msg, sizeof(m->msg), "switched; the old file on %s is still there (hidden); "
			 "the next mount removes it", v->ds[m->src].name);
	}
	pthread_mutex_unlock(&v->mig_lock);
	return ret;
}

/* Shutdown: a migration waiting to retry must see m->stopping. */
void mig_switch_wake(struct vds *v)
{
	pthread_mutex_lock(&v->mig_lock);
	pthread_cond_broadcast(&retry_cond);
	pthread_mutex_unlock(&v->mig_lock);
}

/* Steps 4-11: the pause. */
static int pause_and_flip(struct mig *m, struct flip *f, uint64_t t0)
{
	struct vds *v = m->v;
	int ret, oldfd = -1;

	pthread_rwlock_wrlock(&m->vf->gate);
	pthread_mutex_lock(&v->mig_lock);
	m->flush_ns = mig_now_ns(CLOCK_MONOTONIC) - t0;
	pthread_mutex_unlock(&v->mig_lock);
	ret = atomic_load(&m->mirror_err);
	if (ret)
		mig_fail(m, ret, "writing to the destination failed: %s", NULL);
	if (!ret && (atomic_load(&m->cancel) || atomic_load(&m->stopping)))
		ret = -ECANCELED;
	if (!ret)
		ret = check_datastores(m);
	if (!ret)
		ret = set_times(m);
	vfile_handles_lock();
	if (!ret)
		ret = reopen_handles(m, &f->r);
	if (!ret) {
		pthread_rwlock_wrlock(&v->ns_lock);
		ret = atomic_load(&m->cancel) ? -ECANCELED : check_names(m, f);
		if (!ret)
			ret = commit_and_flip(m, f);
		if (!ret)
			point_at_destination(m, f, &oldfd);
		pthread_rwlock_unlock(&v->ns_lock);
	}
	vfile_handles_unlock();
	pthread_rwlock_unlock(&m->vf->gate);
	pthread_mutex_lock(&v->mig_lock);
	if (!ret)
		m->pause_ns = mig_now_ns(CLOCK_MONOTONIC) - t0 - m->flush_ns;
	pthread_mutex_unlock(&v->mig_lock);
	for (size_t i = 0; i < f->r.n; i++)
		close(f->r.fds[i]);	/* the old fds after a swap, the unused new ones if not */
	free(f->r.fds);
	if (oldfd >= 0)
		close(oldfd);
	return ret;
}

int mig_switch(struct mig *m, bool *settled)
{
	struct flip f = { .newfd = -1, .dparent = -1, .sparent = -1,
			  .r = { .newfd_path = m->copy_fd } };
	uint64_t t0 = mig_now_ns(CLOCK_MONOTONIC);
	int ret;

	snprintf(f.copy, sizeof(f.copy), "%s.copy", m->name);
	ret = before_pause(m, &f);
	if (!ret) {
		ret = pause_and_flip(m, &f, t0);
		if (ret && ret != -ECANCELED)
			mig_fail(m, ret, "switch failed: %s", NULL);	/* unless said already */
	}
	if (!ret) {
		testpoint(m, "after-flip");
		t0 = mig_now_ns(CLOCK_MONOTONIC);
		*settled = !make_durable(m, &f);
		if (f.stale && remove_stale(m, &f))
			*settled = false;
		pthread_mutex_lock(&m->v->mig_lock);
		m->cleanup_ns = mig_now_ns(CLOCK_MONOTONIC) - t0;	/* mig.c adds its part */
		pthread_mutex_unlock(&m->v->mig_lock);
	}
	if (f.newfd >= 0)
		close(f.newfd);
	if (f.dparent >= 0)
		close(f.dparent);
	if (f.sparent >= 0)
		close(f.sparent);
	return ret;
}
