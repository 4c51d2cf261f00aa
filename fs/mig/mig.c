/* mig.c - the migration state machine (see mig.h for the flow and the locks).
 *
 * Each migration is a scheduler job: the scheduler decides when it may start (at
 * most four at once, never two sharing a datastore) and the job holds its two
 * datastores until the file has switched, been rolled back or failed. The work runs
 * on a thread of its own; the scheduler thread only starts it. The switch has a
 * file of its own (mig_switch.c).
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "copier.h"
#include "journal.h"
#include "log.h"
#include "mig_int.h"
#include "overlay.h"
#include "paths.h"
#include "scheduler.h"
#include "testpoint.h"

#define MERGE_CHUNK	(1u << MIG_REGION_SHIFT)

void mig_set_phase(struct mig *m, enum mig_phase p)
{
	migs_lock(m->g);
	m->phase = p;
	migs_unlock(m->g);
}

void mig_copy_path(struct mig *m, char *out, size_t len)
{
	migs_lock(m->g);
	snprintf(out, len, "%s", m->path);
	migs_unlock(m->g);
}

int mig_journal(struct mig *m, enum mig_phase phase)
{
	int ret;

	lk_lock(&m->jlock, LK_JOURNAL);
	ret = journal_write(m, phase);
	lk_unlock(&m->jlock, LK_JOURNAL);
	return ret;
}

int mig_fail(struct mig *m, int err, const char *fmt, ...)
{
	char line[sizeof(m->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	migs_lock(m->g);
	if (!m->err) {
		m->err = err;
		memcpy(m->msg, line, sizeof(line));
	}
	migs_unlock(m->g);
	return err;
}

/* --- overlay on ------------------------------------------------------------- */

/* The migration's own reads of the base (the overlay's fingerprint, the copy) must
 * not make the file look read: its atime is the file's, carried to the destination
 * (open_noatime). The route goes on in one pause: in-flight requests finish on the
 * base first. */
static int mig_prepare(struct mig *m)
{
	struct datastore *S = &m->g->store->ds[m->src];
	char fdp[32], diff[48], uuid[64];
	struct overlay_create_opts co = { 0 };
	struct overlay *ov;
	struct statvfs sv;
	struct stat st;
	int ret;

	fd_path(m->node->fd, fdp);
	m->base_fd = open_noatime(fdp, O_RDWR | O_CLOEXEC);
	if (m->base_fd < 0 || fstat(m->base_fd, &st) < 0 || fstatvfs(m->base_fd, &sv) < 0)
		return mig_fail(m, -errno, "cannot open the source: %s", strerror(errno));
	atomic_store(&m->atime_ns, (long long)st.st_atim.tv_sec * 1000000000ll + st.st_atim.tv_nsec);
	m->base_mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec;
	m->base_ctime_ns = (long long)st.st_ctim.tv_sec * 1000000000ll + st.st_ctim.tv_nsec;
	m->atime_rule = sv.f_flag & (ST_NOATIME | ST_RELATIME);
	snprintf(uuid, sizeof(uuid), "%s:%lu", m->name, (unsigned long)st.st_ino);
	snprintf(diff, sizeof(diff), "%s.diff", m->name);
	mig_set_phase(m, MIG_PREPARING);
	ret = mig_journal(m, MIG_PREPARING);
	if (ret)
		return mig_fail(m, ret, "cannot write the journal: %s", strerror(-ret));
	m->diff_fd = openat(S->state_fd, diff, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (m->diff_fd < 0)
		return mig_fail(m, -errno, "cannot create the differencing file: %s", strerror(errno));
	co.base_uuid = uuid;
	co.size = -1;
	ret = overlay_create(m->base_fd, m->diff_fd, &co, &ov);
	if (ret)
		return mig_fail(m, ret, "cannot create the differencing file: %s", strerror(-ret));
	ret = mig_journal(m, MIG_COPYING);
	if (ret) {
		overlay_close(ov);
		return mig_fail(m, ret, "cannot write the journal: %s", strerror(-ret));
	}
	mig_route_on(m, ov, -1);
	mig_set_phase(m, MIG_COPYING);
	testpoint(m, "overlay-on");
	return 0;
}

void mig_route_on(struct mig *m, struct overlay *ov, int mirror_fd)
{
	vfile_pause(m->vf);
	m->ov = ov;
	m->mirror_fd = mirror_fd;
	vfile_set_route(m->vf, &mig_route, m);
	vfile_resume(m->vf);
}

/* --- copy --------------------------------------------------------------------- */

static void on_copy_progress(void *arg, const struct copier_progress *p)
{
	struct mig *m = arg;

	migs_lock(m->g);
	m->done = p->done;
	m->total = p->total;
	m->rate = p->rate;
	migs_unlock(m->g);
	if (p->done > 0 && p->done < p->total)
		testpoint(m, "mid-copy");
	/* Fail now rather than at ENOSPC later; the copier stops at the cancel. */
	if (mig_space_left(m, p->total - p->done + mig_space_diff(m)))
		atomic_store(&m->cancel, true);
}

static int mig_copy(struct mig *m)
{
	struct datastore *D = &m->g->store->ds[m->dst];
	struct copier_opts o = { 0 };
	struct copier_result res;
	char tmp[48];
	uint64_t t0 = vds_now_ns(CLOCK_MONOTONIC);
	int ret;

	snprintf(tmp, sizeof(tmp), "%s.copy", m->name);
	o.rate_limit = m->bwlimit;
	o.limiters[0] = sched_ds_limiter(m->g->sched, m->src);
	o.limiters[1] = sched_ds_limiter(m->g->sched, m->dst);
	o.progress = on_copy_progress;
	o.progress_arg = m;
	o.cancel = &m->cancel;
	o.no_space_check = true;	/* mig_check() did, with the request's margin */
	/* A partial copy and its checkpoint outlive a crash or an unmount, so the
	 * next mount resumes rather than starts over (recover.c); mig_drop_files
	 * removes them when the migration rolls back. */
	o.keep_partial = true;
	o.checkpoint_every = MIG_CHECKPOINT_EVERY;
	o.resume = m->resumed;
	ret = copier_copy(m->base_fd, D->state_fd, tmp, &o, &res);
	if (ret == -ECANCELED)
		return ret;	/* a cancel, or a failure already said (no room left) */
	if (ret)
		return mig_fail(m, ret, "copy failed: %s", res.msg[0] ? res.msg : strerror(-ret));
	m->copy_fd = openat(D->state_fd, tmp, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (m->copy_fd < 0)
		return mig_fail(m, -errno, "cannot open the copy: %s", strerror(errno));
	migs_lock(m->g);
	m->copy_ns = vds_now_ns(CLOCK_MONOTONIC) - t0;
	m->done = m->total = res.data_bytes;
	if (m->resumed) {
		m->resumed_from = res.resumed_from;
		m->recopied = res.copied;
	}
	migs_unlock(m->g);
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

	lk_rdlock(&m->span, LK_REGION);
	lk_lock(&m->region[ri], LK_REGION);
	if (e->state == OVERLAY_ZERO) {
		ret = mig_zero_range(target, off, len);
	} else {
		n = overlay_read(m->ov, buf, len, off);
		if (n < 0)
			ret = (int)n;
		else if (n > 0 && pwrite(target, buf, n, off) != n)
			ret = errno ? -errno : -EIO;
	}
	lk_unlock(&m->region[ri], LK_REGION);
	lk_rwunlock(&m->span, LK_REGION);
	return ret;
}

#define SPACE_EVERY	64	/* merge chunks between checks of the destination's room */

/* What converging still writes into the copy: the differencing file's blocks not yet
 * merged (an upper bound: those over allocated blocks of the copy take no room). */
static uint64_t still_to_merge(struct mig *m)
{
	uint64_t diff = mig_space_diff(m), merged;

	migs_lock(m->g);
	merged = m->merged_bytes;
	migs_unlock(m->g);
	return diff > merged ? diff - merged : 0;
}

/* One pass over what the overlay holds, in the order its bytes lie in the
 * differencing file (overlay_log_iter): a file written by scattered 4 KiB writes is
 * read front to back instead of seeking all over it (44 s against 12 s for 4 GiB,
 * FORMAT.md). Blocks that change after the iterator saw them are mirrored. */
static int merge_pass(struct mig *m, int target, bool cancellable)
{
	struct overlay_log_iter *it = NULL;
	struct overlay_extent e;
	uint64_t chunks = 0;
	char *buf = malloc(MERGE_CHUNK);
	int ret = buf ? overlay_log_iter_begin(m->ov, &it) : -ENOMEM, more = 0;

	while (!ret && (more = overlay_log_iter_next(it, &e)) == 1) {
		for (uint64_t off = e.off; !ret && off < e.off + e.len;) {
			uint64_t region_end = (off | (MERGE_CHUNK - 1)) + 1;
			uint64_t end = e.off + e.len < region_end ? e.off + e.len : region_end;

			if (cancellable && (atomic_load(&m->cancel) || atomic_load(&m->stopping)))
				ret = -ECANCELED;
			else if (cancellable && !(++chunks % SPACE_EVERY))
				ret = mig_space_left(m, still_to_merge(m));
			if (!ret)
				ret = merge_chunk(m, target, &e, off, end - off, buf);
			migs_lock(m->g);
			m->merged_bytes += end - off;
			migs_unlock(m->g);
			off = end;
			testpoint(m, cancellable ? "mid-converge" : "mid-cancel");
		}
	}
	if (!ret && more < 0)
		ret = more;
	if (it)
		overlay_log_iter_end(it);
	free(buf);
	return ret;
}

static int mirror_on(struct mig *m, int target)
{
	struct overlay_stats st;
	int ret = 0;

	vfile_pause(m->vf);
	overlay_stats(m->ov, &st);
	if (ftruncate(target, st.size) < 0)
		ret = -errno;
	else
		m->mirror_fd = target;
	vfile_resume(m->vf);
	return ret;
}

/* One chunk of the repair pass: make [off, off+len) of the copy read as the file
 * does, under the region's lock (ordered against mirrored writes as merge_chunk). */
static int repair_chunk(struct mig *m, uint64_t off, size_t len, char *view, char *copy)
{
	int ri = (off >> MIG_REGION_SHIFT) % MIG_REGIONS;
	ssize_t a, b;
	int ret = 0;

	lk_rdlock(&m->span, LK_REGION);
	lk_lock(&m->region[ri], LK_REGION);
	a = overlay_read(m->ov, view, len, (off_t)off);
	b = a < 0 ? 0 : pread(m->copy_fd, copy, (size_t)a, (off_t)off);
	if (a < 0)
		ret = (int)a;
	else if (b < 0)
		ret = -errno;
	else if (b < a || memcmp(view, copy, (size_t)a))
		ret = pwrite_all(m->copy_fd, view, (size_t)a, (off_t)off) == a ? 0 : -EIO;
	lk_unlock(&m->region[ri], LK_REGION);
	lk_rwunlock(&m->span, LK_REGION);
	return ret;
}

/* The data extents of fd below size, chunked by region: every chunk repaired. */
static int repair_extents(struct mig *m, int fd, uint64_t size, char *view, char *copy)
{
	off_t pos = 0;
	int ret = 0;

	while (!ret && (uint64_t)pos < size) {
		off_t s = lseek(fd, pos, SEEK_DATA), e;

		if (s < 0)
			return errno == ENXIO ? 0 : -errno;
		e = lseek(fd, s, SEEK_HOLE);
		if (e < 0)
			return -errno;
		if ((uint64_t)e > size)
			e = (off_t)size;
		for (uint64_t off = (uint64_t)s; !ret && off < (uint64_t)e;) {
			uint64_t end = (off | (MERGE_CHUNK - 1)) + 1;

			if (end > (uint64_t)e)
				end = (uint64_t)e;
			if (atomic_load(&m->cancel) || atomic_load(&m->stopping))
				return -ECANCELED;
			ret = repair_chunk(m, off, end - off, view, copy);
			off = end;
		}
		pos = e;
	}
	return ret;
}

/* A converging migration resumed after a crash: its differencing file holds every
 * write since overlay-on that was flushed, and the merge pass puts those into the
 * copy. But a write mirrored into the copy whose block the differencing file had not
 * yet committed (never flushed: lost with the crash) may sit in the copy while the
 * file, read through the overlay, no longer has it. Left there, the block would
 * change under the guest at the switch. So every data extent of the base and of the
 * copy is compared with what the file reads and rewritten where they differ: a read
 * of the data, no write where they agree (MIGRATION.md, "Resume"). */
static int repair_pass(struct mig *m)
{
	struct overlay_stats st;
	char *view = malloc(MERGE_CHUNK), *copy = malloc(MERGE_CHUNK);
	int ret = view && copy ? 0 : -ENOMEM;

	overlay_stats(m->ov, &st);
	if (!ret)
		ret = repair_extents(m, m->base_fd, st.size, view, copy);
	if (!ret)
		ret = repair_extents(m, m->copy_fd, st.size, view, copy);
	free(view);
	free(copy);
	return ret;
}

static int mig_converge(struct mig *m)
{
	uint64_t t0 = vds_now_ns(CLOCK_MONOTONIC);
	int ret;

	mig_set_phase(m, MIG_CONVERGING);
	ret = mig_journal(m, MIG_CONVERGING);
	if (ret)
		return mig_fail(m, ret, "cannot write the journal: %s", strerror(-ret));
	ret = mig_space_left(m, still_to_merge(m));
	if (!ret)
		ret = mirror_on(m, m->copy_fd);
	if (!ret)
		ret = merge_pass(m, m->copy_fd, true);
	if (!ret && m->resumed && m->resume_phase == MIG_CONVERGING)
		ret = repair_pass(m);
	if (!ret && fdatasync(m->copy_fd) < 0)
		ret = -errno;
	if (!ret && (ret = atomic_load(&m->mirror_err)))
		return mig_fail(m, ret, "writing to the destination failed: %s", strerror(-ret));
	if (!ret) {
		migs_lock(m->g);
		m->converge_ns = vds_now_ns(CLOCK_MONOTONIC) - t0;
		migs_unlock(m->g);
		testpoint(m, "converged");
	}
	return ret == -ECANCELED ? ret : ret ? mig_fail(m, ret, "merge failed: %s", strerror(-ret)) : 0;
}

/* --- roll back: mirror into the base, one pass, drop the overlay -------------------- */

static int mig_rollback(struct mig *m)
{
	int ret;

	/* The journal never promises the copy while the mirror leaves it (mig_switch.c). */
	assert(m->journal_phase != MIG_SWITCHING);

	mig_set_phase(m, MIG_CANCELLING);
	/* Informational only: recovery rolls back "copying" and "converging" alike, so
	 * a full source that cannot take the record must not stop the rollback. */
	mig_journal(m, MIG_CANCELLING);
	ret = mirror_on(m, m->base_fd);
	if (!ret)
		ret = merge_pass(m, m->base_fd, false);
	if (!ret)
		ret = atomic_load(&m->mirror_err);
	vfile_pause(m->vf);
	if (!ret && fdatasync(m->base_fd) < 0)
		ret = -errno;
	if (!ret) {
		vfile_set_route(m->vf, NULL, NULL);
		m->mirror_fd = -1;
	}
	vfile_resume(m->vf);
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
		mig_drop_files(m, false);
}

static int drop_failed(struct mig *m, int err, const char *step)
{
	vds_log(LOG_ERR, "vdsfs: %s: cleaning up, %s: %s; the journal stays for the next "
		 "mount\n", m->name, step, strerror(-err));
	return err;
}

/* Differencing file, copy (with its checkpoint) and journal, in that order: the
 * journal goes last, and only if the rest went, so a crash or a failure in between
 * leaves a record recovery can act on. */
int mig_drop_files(struct mig *m, bool keep_journal)
{
	struct datastore *S = &m->g->store->ds[m->src], *D = &m->g->store->ds[m->dst];
	char name[48];
	int ret;

	snprintf(name, sizeof(name), "%s.diff", m->name);
	if (unlinkat(S->state_fd, name, 0) < 0 && errno != ENOENT)
		return drop_failed(m, -errno, "removing the differencing file");
	testpoint(m, "cleanup");
	snprintf(name, sizeof(name), "%s.copy", m->name);
	ret = copier_discard(D->state_fd, name);
	if (ret)
		return drop_failed(m, ret, "removing the copy");
	if (fsync(D->state_fd) < 0)
		return drop_failed(m, -errno, "syncing the destination's state folder");
	if (keep_journal)
		return 0;
	lk_lock(&m->jlock, LK_JOURNAL);
	ret = journal_remove(m);	/* fsyncs the source's state folder */
	if (!ret)
		m->journal_phase = MIG_NO_PHASE;
	lk_unlock(&m->jlock, LK_JOURNAL);
	return ret ? drop_failed(m, ret, "removing the journal") : 0;
}

static void finish(struct mig *m, enum mig_phase phase, int status)
{
	struct migs *g = m->g;

	migs_lock(g);
	m->phase = phase;
	m->ended_ns = vds_now_ns(CLOCK_REALTIME);
	mig_finished_locked(g, m);
	migs_unlock(g);
	if (m->sjob)
		sched_job_done(m->sjob, status, status ? m->msg : NULL);
	if (m->stuck)
		return;	/* keeps its vfile and node: I/O still goes through m */
	node_unpin(&g->ns->nodes, m->node);
	vfile_put(g->ns, m->vf);
	m->vf = NULL;
}

void mig_release_stuck(struct mig *m)
{
	if (!m->stuck)
		return;
	vfile_drop_route(m->vf);
	release_io(m, true);
	node_unpin(&m->g->ns->nodes, m->node);
	vfile_put(m->g->ns, m->vf);
	m->vf = NULL;
	m->stuck = false;
}

bool mig_wait_retry(struct mig *m, unsigned *wait_s)
{
	struct migs *g = m->g;
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += *wait_s;
	migs_lock(g);
	while (!atomic_load(&m->stopping) &&
	       pthread_cond_timedwait(&g->retry, &g->lock, &until) != ETIMEDOUT)
		;
	migs_unlock(g);
	*wait_s = *wait_s * 2 > 60 ? 60 : *wait_s * 2;
	return !atomic_load(&m->stopping);
}

/* After a rollback the migration is over (its slot is free, its record final), but
 * a datastore that does not answer (a network datastore gone away) may keep its
 * copy and journal from being removed: the copy would hold the destination's room,
 * and its check, until the next mount. So while the daemon runs the removal is
 * retried, with a growing wait, and status says so meanwhile. */
static void drop_until_done(struct mig *m, int err)
{
	char base[sizeof(m->msg)], line[sizeof(m->msg) + 96];
	unsigned wait_s = 1;

	migs_lock(m->g);
	memcpy(base, m->msg, sizeof(base));
	migs_unlock(m->g);
	do {
		snprintf(line, sizeof(line), "%s%s(its state files could not all be removed yet: "
			 "%s; retrying)", base, base[0] ? " " : "", strerror(-err));
		line[sizeof(m->msg) - 1] = 0;	/* a long note is cut, not overrun */
		migs_lock(m->g);
		memcpy(m->msg, line, sizeof(m->msg));
		migs_unlock(m->g);
	} while (mig_wait_retry(m, &wait_s) && (err = mig_drop_files(m, false)));
	if (!err) {
		migs_lock(m->g);
		memcpy(m->msg, base, sizeof(base));
		migs_unlock(m->g);
	}
}

static void mig_run(struct mig *m)
{
	bool overlay_on = false, settled = false;
	int ret, left;

	/* A resumed migration's route is on since the mount (recover.c). */
	ret = m->resumed ? 0 : mig_prepare(m);
	overlay_on = m->ov != NULL;
	if (!ret && !(m->resumed && m->resume_phase == MIG_CONVERGING))
		ret = mig_copy(m);
	if (!ret)
		ret = mig_converge(m);
	if (!ret)
		ret = mig_switch(m, &settled);
	if (!ret) {
		uint64_t t0 = vds_now_ns(CLOCK_MONOTONIC);

		release_io(m, true);
		left = mig_drop_files(m, !settled);
		migs_lock(m->g);
		m->cleanup_ns += vds_now_ns(CLOCK_MONOTONIC) - t0;
		if ((left || !settled) && !m->msg[0])
			snprintf(m->msg, sizeof(m->msg), "switched; %s, so the journal stays and the next "
				 "mount finishes", left ? "cleaning up failed" : "the switch is not durable yet");
		migs_unlock(m->g);
		finish(m, MIG_DONE, 0);
		return;
	}
	if (m->stuck) {
		/* Past its commit (mig_switch.c, step 9): the overlay and its mirror into
		 * the copy stay, so the copy stays what the journal promises. */
		finish(m, MIG_FAILED, ret);
		return;
	}
	if (atomic_load(&m->stopping)) {
		/* Daemon shutdown: the journal tells the next mount to roll back. */
		vfile_pause(m->vf);
		vfile_set_route(m->vf, NULL, NULL);
		vfile_resume(m->vf);
		release_io(m, true);
		finish(m, MIG_FAILED, -ESHUTDOWN);
		return;
	}
	if (overlay_on) {
		int rb = mig_rollback(m);

		if (rb) {
			/* The overlay stays the file's route: dropping it now would lose
			 * what only the differencing file holds. The next mount retries. */
			mig_fail(m, rb, "rollback failed, the file keeps its overlay until the next mount: %s", strerror(-rb));
			migs_lock(m->g);
			m->stuck = true;
			migs_unlock(m->g);
			finish(m, MIG_FAILED, rb);
			return;
		}
	}
	release_io(m, true);
	left = mig_drop_files(m, false);
	/* A cancel with an error recorded (no room left, say) is a failure. */
	if (ret == -ECANCELED && !m->err)
		finish(m, MIG_CANCELLED, -ECANCELED);
	else
		finish(m, MIG_FAILED, m->err ? m->err : ret);
	if (left)
		drop_until_done(m, left);
}

/* The last thing the thread does is say so: from then on the record may be freed
 * (mig_ctl.c joins the thread first). */
static void *mig_thread(void *arg)
{
	struct mig *m = arg;

	mig_run(m);
	migs_lock(m->g);
	m->thread_exited = true;
	migs_unlock(m->g);
	return NULL;
}

void mig_thread_start(struct mig *m)
{
	migs_lock(m->g);
	m->thread_started = pthread_create(&m->thread, NULL, mig_thread, m) == 0;
	migs_unlock(m->g);
	if (m->thread_started)
		return;
	mig_fail(m, -EAGAIN, "cannot start a thread: %s", strerror(EAGAIN));
	finish(m, MIG_FAILED, -EAGAIN);
}

