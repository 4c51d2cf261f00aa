/* mig_switch.c - the switch: the file's I/O pauses, the copy becomes the file.
 *
 * Called by the migration thread once the copy is complete and every write is
 * mirrored into it (mig.c). Everything slow, and everything that can fail, is done
 * before the point of no return; the steps and what holds after each:
 *
 * Stage (the file's I/O goes on; a failure rolls the migration back):
 *  1. Both datastores are still mounted where they were; the copy has the source's
 *     owner, mode and xattrs.
 *  2. The copy's data and both state folders are durable; the "switching" record is
 *     staged beside the journal (durable, not yet current).
 *  3. An O_PATH fd on the copy and its stat are taken: an fd follows the inode
 *     across the rename, so nothing after it needs to look the file up.
 * Pause (the file's gate held exclusive: no read, write, open, release or resize of
 * it runs; no global lock is held but in step 8):
 *  4. No mirror write failed; no cancel, no shutdown; datastores still mounted.
 *  5. The copy has the file's times (no write can move them any more).
 *  6. Every handle has a second fd, on the copy (vfile_rebind_prepare).
 *  7. Commit: the record (restaged if a rename changed the path) becomes the
 *     journal. Recovery now rolls forward: the copy, complete and durable, is the
 *     file, since the mirror keeps it equal to the file while the gate is held; and
 *     it moves the copy into place only if the source still is the migrated inode
 *     (recover.c), so a file removed or replaced from here on is never brought back.
 *  8. The namespace lock, exclusive: no name changes and no lookups until step 11
 *     ends. The journal names the file's current path (a rename since step 7 is
 *     recorded first, with the lock let go meanwhile). The source path still names
 *     the migrating inode: if the file was unlinked or replaced (renamed over) the
 *     migration ends cancelled, nothing to move, nothing resurrected or clobbered.
 *     The destination path is free, its folder exists, both folders are open.
 *  9. The copy is renamed into place: the POINT OF NO RETURN. If this rename, or
 *     the commit of step 7, or a check of step 8 fails, the journal is put back to
 *     "converging" and the migration rolls back as before step 7; if even that
 *     fails the file keeps its overlay, whose mirror keeps the copy what the journal
 *     says it is ("stuck"), and the next mount finishes the switch.
 * 10. The source is unlinked. If that fails the file is switched all the same: the
 *     stale source, which would shadow the file from an earlier datastore, is hidden
 *     from lookups (ns_hide) and removed by retries after the pause (or, from the
 *     journal, by the next mount).
 * 11. Node and handles point at the destination (vfile_rebind_commit); the route
 *     goes back to passthrough. Cannot fail: everything it needs was made in steps
 *     3 and 6. Lookups, which wait for step 8's lock, find the node rebound.
 * After the pause:
 * 12. The rename and the unlink are made durable (fsync of both folders).
 * 13. mig.c cleans up: differencing file, copy leftovers, then the journal, which
 *     goes only if 10, 12 and 13 all succeeded. Otherwise it stays "switching" and
 *     the next mount finishes (recover.c: roll_forward is idempotent).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "beneath.h"
#include "clock.h"
#include "journal.h"
#include "log.h"
#include "mig_int.h"
#include "paths.h"
#include "testpoint.h"

/* Owner, mode and xattrs as the source has them now (the copier copied the ones at
 * copy time; chmod/chown/setxattr may have happened since). A destination that cannot
 * keep one of them fails the migration: the file must not come out different. */
static int copy_xattrs(struct mig *m, char *names, char *val)
{
	ssize_t len = flistxattr(m->base_fd, names, XATTR_LIST_MAX);

	if (len < 0)
		return errno == ENOTSUP ? 0 : mig_fail(m, -errno, "listing the source's xattrs: %s", strerror(errno));
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
	int ret = names && val ? 0 : mig_fail(m, -ENOMEM, "copying attributes: %s", strerror(ENOMEM));

	if (!ret && fstat(m->base_fd, &st) < 0)
		ret = mig_fail(m, -errno, "reading the source's attributes: %s", strerror(errno));
	if (!ret && (fchown(m->copy_fd, st.st_uid, st.st_gid) < 0 ||
		     fchmod(m->copy_fd, st.st_mode & 07777) < 0))
		ret = mig_fail(m, -errno, "giving the copy the file's owner and mode: %s", strerror(errno));
	if (!ret)
		ret = copy_xattrs(m, names, val);
	free(names);
	free(val);
	return ret;
}

static int check_datastores(struct mig *m)
{
	const struct datastore *d[2] = { &m->g->store->ds[m->src], &m->g->store->ds[m->dst] };

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
		return mig_fail(m, -errno, "reading the source's times: %s", strerror(errno));
	ts[0] = vds_ns_ts((uint64_t)atomic_load(&m->atime_ns));
	ts[1] = mt ? vds_ns_ts((uint64_t)mt) : st.st_mtim;
	if (futimens(m->copy_fd, ts) < 0)
		return mig_fail(m, -errno, "giving the copy the file's times: %s", strerror(errno));
	return 0;
}

/* What the pause needs, all made before anything irreversible. */
struct flip {
	char copy[48];			/* "mig-N.copy" in the destination's .vdsfs */
	char path[PATH_MAX];		/* the file's path, frozen under the ns lock */
	const char *name;		/* its last component */
	int newfd;			/* O_PATH on the copy: the node's fd afterwards */
	struct stat nst;
	int dparent, sparent;		/* the file's folder on each datastore */
	unsigned staged_gen;
	struct vfile_rebind rb;
	bool committed;			/* the journal says "switching" */
	const char *step;		/* what was being done, for a failure's message */
	bool stale;			/* the source could not be removed (step 10) */
};

static int cancel_with(struct mig *m, const char *why)
{
	migs_lock(m->g);
	if (!m->msg[0])
		snprintf(m->msg, sizeof(m->msg), "%s", why);
	migs_unlock(m->g);
	atomic_store(&m->cancel, true);
	return -ECANCELED;
}

/* Steps 1-3. */
static int stage(struct mig *m, struct flip *f)
{
	const struct store *s = m->g->store;
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
		return mig_fail(m, -errno, "flushing the copy failed: %s", strerror(errno));
	/* The copy's allocations would otherwise all be committed by the one directory
	 * fsync inside the pause. Not syncfs(): under a heavy writer the source holds
	 * gigabytes of dirty differencing-file pages, and writing them back took 15 s
	 * of a 20 s migration (tools/bench/mig-bench.sh). */
	if (fsync(s->ds[m->dst].state_fd) < 0 || fsync(s->ds[m->src].state_fd) < 0)
		return mig_fail(m, -errno, "syncing the state folders failed: %s", strerror(errno));
	lk_lock(&m->jlock, LK_JOURNAL);
	ret = journal_stage(m, MIG_SWITCHING, &f->staged_gen);
	lk_unlock(&m->jlock, LK_JOURNAL);
	if (ret)
		return mig_fail(m, ret, "cannot write the journal: %s", strerror(-ret));
	fd_path(m->copy_fd, p);
	f->newfd = open(p, O_PATH | O_CLOEXEC);
	if (f->newfd < 0 || fstat(f->newfd, &f->nst) < 0)
		return mig_fail(m, -errno, "opening the copy for the switch: %s", strerror(errno));
	/* Unlink and rename no longer cancel a migration from here on: step 8 checks. */
	testpoint(m, "switching");
	return 0;
}

/* Step 6. */
static int reopen_handles(struct mig *m, struct flip *f)
{
	char why[96];
	int ret = vfile_rebind_prepare(m->vf, m->copy_fd, &f->rb);

	if (!ret)
		return 0;
	snprintf(why, sizeof(why), "handle %zu of %zu: %s", f->rb.failed_at + 1,
		 m->vf->nhandles, strerror(-ret));
	return mig_fail(m, ret, "switch failed: reopening the open handles on the destination, %s", why);
}

/* Step 7: the staged record (restaged if a rename changed the path) becomes the
 * journal, with m->jlock held. */
static int commit_locked(struct mig *m, struct flip *f, bool *current)
{
	unsigned gen = f->staged_gen;
	int ret = 0;

	migs_lock(m->g);
	bool moved = m->path_gen != f->staged_gen;
	migs_unlock(m->g);
	if (moved)
		ret = journal_stage(m, MIG_SWITCHING, &gen);
	if (!ret)
		ret = journal_commit(m, current);
	if (!ret)
		ret = testfail("commit");
	if (*current) {
		m->journal_phase = MIG_SWITCHING;
		m->journal_gen = gen;
	}
	return ret;
}

/* A failure once the record may be current: put the journal back to "converging"
 * (the source is authoritative again) before the mirror may stop, since rolling
 * back stops mirroring into the copy, which is only safe once the journal no longer
 * promises it. Takes m->jlock; never called with the ns lock held. */
static int undo_commit(struct mig *m, int err, const char *what)
{
	char why[200];
	int ret;

	lk_lock(&m->jlock, LK_JOURNAL);
	ret = testfail("journal-revert");
	if (!ret)
		ret = journal_write(m, MIG_CONVERGING);
	lk_unlock(&m->jlock, LK_JOURNAL);
	migs_lock(m->g);
	m->stuck = ret != 0;	/* mig.c leaves the overlay and its mirror in place */
	migs_unlock(m->g);
	if (err == -ECANCELED && !ret)
		return err;	/* nothing to move: the message says why */
	snprintf(why, sizeof(why), "%s: %s", what, strerror(-err));
	if (!ret)
		return mig_fail(m, err, "switch failed: %s", why);
	return mig_fail(m, err, "switch failed after its journal was committed (%s); the file "
			"keeps its overlay, mirrored to the copy, and the next mount finishes the switch",
			why);
}

static int open_folder(struct mig *m, int ds, const char *path)
{
	char parent[PATH_MAX];

	vds_parent_path(path, parent, sizeof(parent));
	return bn_open(m->g->store->ds[ds].fd, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
}

/* Step 8's checks of the names, with the ns lock held exclusive. */
static int check_names(struct mig *m, struct flip *f)
{
	struct ns *ns = m->g->ns;
	const struct datastore *S = &m->g->store->ds[m->src], *D = &m->g->store->ds[m->dst];
	char parent[PATH_MAX], why[PATH_MAX + 96];
	struct stat st;
	int ret;

	mig_copy_path(m, f->path, sizeof(f->path));
	f->name = strrchr(f->path, '/') ? strrchr(f->path, '/') + 1 : f->path;
	if (bn_fstatat(S->fd, f->path, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT && errno != ENOTDIR)
			return mig_fail(m, -errno, "checking the source before the switch: %s", strerror(errno));
		/* Renamed over by a file of another datastore, or just removed. */
		if (ns_find(ns, f->path, &st) >= 0)
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
	ret = ns_mkpath(ns, m->dst, parent);
	if (ret)
		return mig_fail(m, ret, "creating the file's folder on the destination: %s", strerror(-ret));
	f->dparent = open_folder(m, m->dst, f->path);
	f->sparent = f->dparent < 0 ? -1 : open_folder(m, m->src, f->path);
	if (f->sparent < 0)
		return mig_fail(m, -errno, "opening the file's folders for the switch: %s", strerror(errno));
	return 0;
}

/* True while the journal names the path the file has now; with the ns lock held
 * (renames, which change it, hold that lock too). */
static bool journal_current(struct mig *m)
{
	unsigned jgen, pgen;

	lk_lock(&m->jlock, LK_JOURNAL);
	jgen = m->journal_gen;
	lk_unlock(&m->jlock, LK_JOURNAL);
	migs_lock(m->g);
	pgen = m->path_gen;
	migs_unlock(m->g);
	return jgen == pgen;
}

/* Steps 9-11, with the ns lock held exclusive. 0: the copy is the file. */
static int flip(struct mig *m, struct flip *f, int *oldfd)
{
	struct ns *ns = m->g->ns;
	const struct datastore *S = &m->g->store->ds[m->src], *D = &m->g->store->ds[m->dst];
	int ret = testfail("flip-rename");

	f->step = "renaming the copy into place";
	if (!ret && bn_renameat2(D->state_fd, f->copy, D->fd, f->path, 0) < 0)
		ret = -errno;
	if (ret)
		return ret;
	/* The destination is the file from here on. */
	ret = testfail("flip-unlink");
	if (!ret && unlinkat(f->sparent, f->name, 0) < 0)
		ret = -errno;
	if (ret) {
		vds_log(LOG_ERR, "vdsfs: %s: removing the source %s on %s: %s; it is hidden and "
			"removal is retried\n", m->name, f->path, S->name, strerror(-ret));
		if (ns_hide(ns, m->src, m->src_dev, m->src_ino))
			vds_log(LOG_ERR, "vdsfs: %s: no memory to hide the old file %s on %s: lookups "
				"may find it until it is removed\n", m->name, f->path, S->name);
		migs_lock(m->g);
		mig_set_stale_locked(m, true);
		snprintf(m->msg, sizeof(m->msg), "switched; the old file on %s could not be removed "
			 "(%s): hidden, retrying", S->name, strerror(-ret));
		migs_unlock(m->g);
		f->stale = true;
	}
	/* Step 11. */
	assert(f->committed && f->newfd >= 0);
	vfile_rebind_commit(ns, m->vf, &f->rb, m->dst, f->newfd, &f->nst, oldfd);
	f->newfd = -1;		/* the node's now */
	return 0;
}

/* Step 12. Failing, the journal stays for the next mount. */
static int make_durable(struct mig *m, struct flip *f)
{
	int ret = testfail("flip-sync");

	if (!ret && (fsync(f->dparent) < 0 || (!f->stale && fsync(f->sparent) < 0)))
		ret = -errno;
	if (ret)
		vds_log(LOG_ERR, "vdsfs: %s: syncing the folders of %s after the switch: %s; "
			"the journal stays for the next mount\n", m->name, f->path, strerror(-ret));
	return ret;
}

/* After step 10 failed: retry removing the stale source (hidden meanwhile) with a
 * growing wait, until it goes or the daemon stops. It is found through its folder's
 * fd by its name, which only a rename of a folder above it changes (that moves the
 * folder, fd and all); and removed only if it still is the migrated inode. */
static int remove_stale(struct mig *m, struct flip *f)
{
	struct migs *g = m->g;
	unsigned wait_s = 1;
	int ret = -ESHUTDOWN;

	while (mig_wait_retry(m, &wait_s)) {
		struct stat st;

		testpoint(m, "unlink-retry");
		if (atomic_load(&m->stopping))
			break;
		ns_lock_excl(g->ns);
		if (fstatat(f->sparent, f->name, &st, AT_SYMLINK_NOFOLLOW) < 0 ?
		    errno == ENOENT : st.st_dev != m->src_dev || st.st_ino != m->src_ino)
			ret = 0;	/* gone already (a rename over it dropped it) */
		else
			ret = unlinkat(f->sparent, f->name, 0) < 0 ? -errno : 0;
		if (!ret)
			ns_unhide(g->ns, m->src, m->src_dev, m->src_ino);
		ns_unlock(g->ns);
		if (!ret)
			ret = fsync(f->sparent) < 0 ? -errno : 0;
		if (!ret)
			break;
		vds_log(LOG_ERR, "vdsfs: %s: removing the old file %s: %s; retrying in %u s\n",
			m->name, f->name, strerror(-ret), wait_s);
	}
	migs_lock(g);
	if (!ret) {
		mig_set_stale_locked(m, false);
		m->msg[0] = 0;
	} else {
		snprintf(m->msg, sizeof(m->msg), "switched; the old file on %s is still there (hidden); "
			 "the next mount removes it", g->store->ds[m->src].name);
	}
	migs_unlock(g);
	return ret;
}

/* Step 8 and, if its checks pass, steps 9-11: 0 once flipped; else -errno with
 * the ns lock let go and nothing flipped. */
static int check_and_flip(struct mig *m, struct flip *f, int *oldfd)
{
	struct ns *ns = m->g->ns;
	int ret;

	for (;;) {
		ns_lock_excl(ns);
		if (journal_current(m))
			break;
		/* A rename since the commit: record the new path first, without the ns
		 * lock (a journal write is an fsync). */
		ns_unlock(ns);
		lk_lock(&m->jlock, LK_JOURNAL);
		ret = journal_write(m, MIG_SWITCHING);
		lk_unlock(&m->jlock, LK_JOURNAL);
		if (ret)
			return mig_fail(m, ret, "cannot write the journal: %s", strerror(-ret));
	}
	ret = atomic_load(&m->cancel) ? -ECANCELED : check_names(m, f);
	if (!ret)
		ret = flip(m, f, oldfd);
	ns_unlock(ns);
	return ret;
}

/* Steps 4-11: the pause. */
static int pause_and_flip(struct mig *m, struct flip *f, uint64_t t0)
{
	bool current = false;
	int ret, oldfd = -1;

	vfile_pause(m->vf);
	migs_lock(m->g);
	m->flush_ns = vds_now_ns(CLOCK_MONOTONIC) - t0;
	migs_unlock(m->g);
	ret = atomic_load(&m->mirror_err);
	if (ret)
		mig_fail(m, ret, "writing to the destination failed: %s", strerror(-ret));
	if (!ret && (atomic_load(&m->cancel) || atomic_load(&m->stopping)))
		ret = -ECANCELED;
	if (!ret)
		ret = check_datastores(m);
	if (!ret)
		ret = set_times(m);
	if (!ret)
		ret = reopen_handles(m, f);
	if (!ret) {
		f->step = "committing the journal";
		lk_lock(&m->jlock, LK_JOURNAL);
		ret = commit_locked(m, f, &current);
		lk_unlock(&m->jlock, LK_JOURNAL);
		f->committed = current;
		if (ret && !current)
			mig_fail(m, ret, "cannot write the journal: %s", strerror(-ret));
	}
	if (!ret) {
		testpoint(m, "before-flip");
		f->step = "checking the names";
		ret = check_and_flip(m, f, &oldfd);
	}
	if (ret && f->committed)
		ret = undo_commit(m, ret, f->step);
	if (!ret) {
		vfile_set_route(m->vf, NULL, NULL);
		m->mirror_fd = -1;
	}
	vfile_resume(m->vf);
	migs_lock(m->g);
	if (!ret)
		m->pause_ns = vds_now_ns(CLOCK_MONOTONIC) - t0 - m->flush_ns;
	migs_unlock(m->g);
	vfile_rebind_done(&f->rb);	/* the old fds after a swap, the unused new ones if not */
	if (oldfd >= 0)
		close(oldfd);
	return ret;
}

int mig_switch(struct mig *m, bool *settled)
{
	struct flip f = { .newfd = -1, .dparent = -1, .sparent = -1 };
	uint64_t t0 = vds_now_ns(CLOCK_MONOTONIC);
	int ret;

	snprintf(f.copy, sizeof(f.copy), "%s.copy", m->name);
	ret = stage(m, &f);
	if (!ret) {
		ret = pause_and_flip(m, &f, t0);
		if (ret && ret != -ECANCELED)
			mig_fail(m, ret, "switch failed: %s", strerror(-ret));	/* unless said already */
	}
	if (!ret) {
		testpoint(m, "after-flip");
		t0 = vds_now_ns(CLOCK_MONOTONIC);
		*settled = !make_durable(m, &f);
		if (f.stale && remove_stale(m, &f))
			*settled = false;
		migs_lock(m->g);
		m->cleanup_ns = vds_now_ns(CLOCK_MONOTONIC) - t0;	/* mig.c adds its part */
		migs_unlock(m->g);
	}
	if (f.newfd >= 0)
		close(f.newfd);
	if (f.dparent >= 0)
		close(f.dparent);
	if (f.sparent >= 0)
		close(f.sparent);
	return ret;
}
