/* mig_switch.c - the switch: the file's I/O pauses, the copy becomes the file.
 *
 * Called by the migration thread once the copy is complete and every write is
 * mirrored into it (mig.c). Everything slow is done before the pause; the pause
 * commits the journal's "switching" record, renames the copy into place, removes
 * the source and points the node and every open handle at the destination.
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

/* --- switch ------------------------------------------------------------------------ */

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
		return mig_fail(m, -ENOMEM, "switch failed: %s", why);
	}
	r->cap = n;
	vfile_for_each_handle(m->vf, reopen_one, r);
	if (!r->err)
		return 0;
	snprintf(why, sizeof(why), "handle %zu of %zu: %s", r->n + 1, n, strerror(-r->err));
	return mig_fail(m, r->err, "switch failed: reopening the open handles on the destination, %s", why);
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
			return mig_fail(m, ret, "%s", why);
		}
	}
	return 0;
}

int mig_switch(struct mig *m)
{
	struct vds *v = m->v;
	char path[4096];
	struct reopen r = { .newfd_path = m->copy_fd };
	struct stat nst;
	int ret, newfd = -1, oldfd = -1;
	uint64_t t0 = mig_now_ns(CLOCK_MONOTONIC), staged_gen;

	ret = check_datastores(m);
	if (ret)
		return ret;
	ret = copy_attrs(m);
	if (ret)
		return ret;
	mig_set_phase(m, MIG_SWITCHING);
	/* Everything slow happens before the pause: flush what the mirror wrote so far
	 * and stage the "switching" record, so the pause only flushes the last
	 * writes and commits the record with a rename. */
	if (fdatasync(m->copy_fd) < 0)
		return mig_fail(m, -errno, "flushing the copy failed: %s", NULL);
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
		return mig_fail(m, ret, "cannot write the journal: %s", NULL);
	pthread_rwlock_wrlock(&m->vf->gate);
	pthread_mutex_lock(&v->mig_lock);
	m->flush_ns = mig_now_ns(CLOCK_MONOTONIC) - t0;
	pthread_mutex_unlock(&v->mig_lock);
	t0 = mig_now_ns(CLOCK_MONOTONIC);
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
		mig_copy_path(m, path, sizeof(path));
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
		return mig_fail(m, ret, "switch failed: %s", NULL);
	}
	close(oldfd);
	testpoint(m, "after-flip");
	pthread_mutex_lock(&v->mig_lock);
	m->pause_ns = mig_now_ns(CLOCK_MONOTONIC) - t0;
	pthread_mutex_unlock(&v->mig_lock);
	fsync(v->ds[m->dst].fd);
	return 0;
}
