/* mig_ctl.c - the migration registry and what the control socket asks of it:
 * validate and submit, cancel, status and events, and the namespace hooks.
 *
 * A request is checked completely before anything changes (bad requests change
 * nothing). Records of finished migrations stay in the registry so that status can
 * report them, crash recoveries included: the most recent MIG_KEEP_FINISHED of them.
 * An older one is dropped from the listing at once and freed once nothing refers
 * to it: the scheduler's events name a record until its job is released, and its
 * thread until it exits. The scheduler keeps no event log for the daemon; each
 * record keeps its own events (queued, started, ended), so nothing can outlive it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "beneath.h"
#include "copier.h"
#include "mig.h"
#include "mig_int.h"
#include "scheduler.h"
#include "testpoint.h"
#include "vdsfs.h"
#include "vfile.h"

static uint64_t now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static struct mig *find_active_path_locked(struct vds *v, const char *path)
{
	for (struct mig *m = v->migs; m; m = m->next)
		if (m->phase < MIG_DONE && !strcmp(m->path, path))
			return m;
	return NULL;
}

uint64_t mig_of_path(struct vds *v, const char *path)
{
	pthread_mutex_lock(&v->mig_lock);
	struct mig *m = find_active_path_locked(v, path);
	uint64_t id = m ? m->id : 0;
	pthread_mutex_unlock(&v->mig_lock);
	return id;
}

int mig_active_on(struct vds *v, int ds)
{
	int n = 0;

	pthread_mutex_lock(&v->mig_lock);
	for (struct mig *m = v->migs; m; m = m->next)
		n += m->phase < MIG_DONE && (m->src == ds || m->dst == ds);
	pthread_mutex_unlock(&v->mig_lock);
	return n;
}

static int errf(char *err, size_t len, int ret, const char *fmt, const char *a, const char *b)
{
	snprintf(err, len, fmt, a, b);
	return ret;
}

/* mig_check(), also counting the file into *sp when it passes. */
static int check_file(struct vds *v, const char *path, int dst, const struct mig_opts *o,
		      struct mig_space *sp, char *err, size_t len)
{
	struct mig_space one = { 0 };
	struct stat st;
	int src, ret;

	if (!vds_path_sane(path))
		return errf(err, len, -EINVAL, "%s: not a path inside the mount%s", path, "");
	if (dst < 0 || dst >= v->nds)
		return errf(err, len, -EINVAL, "unknown datastore%s%s", "", "");
	src = vds_find_beneath(v, path, &st);
	if (src < 0)
		return errf(err, len, src, "%s: %s", path, src == -EINVAL ?
			    "leads through a symlink or out of the datastore" : strerror(-src));
	if (!S_ISREG(st.st_mode))
		return errf(err, len, -EINVAL, "%s: not a regular file%s", path, "");
	if (src == dst)
		return errf(err, len, -EINVAL, "%s is already on datastore %s", path, v->ds[dst].name);
	if (st.st_nlink > 1)
		return errf(err, len, -EMLINK, "%s is hard-linked; hard links cannot move between datastores%s",
			    path, "");
	if (mig_of_path(v, path))
		return errf(err, len, -EBUSY, "%s is already migrating%s", path, "");
	mig_space_add(v, &one, &st);
	ret = mig_space_verdict(v, dst, &one, o, path, err, len);
	if (!ret && sp) {
		sp->allocated += one.allocated;
		sp->rate += one.rate;
		sp->growth += one.growth;	/* this file's own estimate, for space_need */
		sp->files++;
	}
	return ret;
}

int mig_check(struct vds *v, const char *path, int dst, const struct mig_opts *o, char *err,
	      size_t len)
{
	return check_file(v, path, dst, o, NULL, err, len);
}

/* A request moving several files to one datastore must fit there as a whole. */
static int check_sums(struct vds *v, const char *const *paths, const int *dsts, size_t n,
		      const struct mig_opts *o, char *err, size_t len)
{
	for (int d = 0; d < v->nds; d++) {
		struct mig_space sp = { 0 };
		char what[64];
		int ret;

		for (size_t i = 0; i < n; i++) {
			struct stat st;

			if (dsts[i] == d && vds_find_beneath(v, paths[i], &st) >= 0)
				mig_space_add(v, &sp, &st);
		}
		if (sp.files < 2)
			continue;	/* one file: checked on its own already */
		snprintf(what, sizeof(what), "the %u files this request moves there", sp.files);
		ret = mig_space_verdict(v, d, &sp, o, what, err, len);
		if (ret)
			return ret;
	}
	return 0;
}

/* --- scheduler glue --------------------------------------------------------------- */

static void job_run(struct sched_job *job)
{
	struct mig *m = sched_job_user(job);

	m->sjob = job;
	pthread_mutex_lock(&m->v->mig_lock);
	m->phase = MIG_COPYING;
	m->started_ns = now_real();
	pthread_mutex_unlock(&m->v->mig_lock);
	mig_thread_start(m);
}

static void job_cancel(struct sched_job *job)
{
	struct mig *m = sched_job_user(job);

	atomic_store(&m->cancel, true);
}

static void prune_locked(struct vds *v);

/* The scheduler has delivered the job's last event and forgets it. */
static void job_release(struct sched_job *job)
{
	struct mig *m = sched_job_user(job);
	struct vds *v = m->v;

	pthread_mutex_lock(&v->mig_lock);
	m->released = true;
	prune_locked(v);
	pthread_mutex_unlock(&v->mig_lock);
}

static const struct sched_job_ops mig_job_ops = {
	.run = job_run,
	.cancel = job_cancel,
	.release = job_release,
};

/* Scheduler thread, in sequence order; m lives at least until job_release(). */
static void on_event(void *arg, const struct sched_event *ev)
{
	struct vds *v = arg;
	struct mig *m = ev->user;

	if (!m || ev->type == SCHED_EV_PROGRESS)
		return;
	pthread_mutex_lock(&v->mig_lock);
	if (ev->type == SCHED_EV_QUEUED) {
		m->queued_seq = ev->seq;
		m->queued_ts = ev->ts_ns;
	} else if (ev->type == SCHED_EV_STARTED) {
		m->started_seq = ev->seq;
		m->started_ts = ev->ts_ns;
	} else {
		m->ended_seq = ev->seq;
		m->ended_ts = ev->ts_ns;
		m->end_event = ev->type;
		if (m->phase == MIG_QUEUED) {	/* cancelled before it ever ran */
			m->phase = MIG_CANCELLED;
			m->ended_ns = now_real();
			mig_finished_locked(v, m);
		}
	}
	pthread_mutex_unlock(&v->mig_lock);
	if (ev->type == SCHED_EV_CANCELLED && !m->sjob && m->vf) {
		node_unpin(&v->nodes, m->node);
		vfile_put(v, m->vf);
		m->vf = NULL;
	}
}

int mig_init(struct vds *v)
{
	/* No scheduler log: its events would name records after they are freed. */
	struct sched_opts o = { .max_running = 4, .per_ds = 1, .on_event = on_event,
				.event_arg = v };

	v->sched = sched_new(&o);
	return v->sched ? 0 : -ENOMEM;
}

/* --- the registry ----------------------------------------------------------------- */

void mig_register_locked(struct vds *v, struct mig *m)
{
	m->prev = v->migs_tail;
	if (v->migs_tail)
		v->migs_tail->next = m;
	else
		v->migs = m;
	v->migs_tail = m;
}

static void unregister_locked(struct vds *v, struct mig *m)
{
	if (m->prev)
		m->prev->next = m->next;
	else
		v->migs = m->next;
	if (m->next)
		m->next->prev = m->prev;
	else
		v->migs_tail = m->prev;
}

/* Only the most recent MIG_KEEP_FINISHED finished records stay listed, so a daemon
 * that has run a million migrations does not keep a million records. A stuck one
 * (its overlay still carries the file's I/O) is never dropped. */
void mig_finished_locked(struct vds *v, struct mig *m)
{
	if (m->stuck)
		return;
	if (v->done_tail)
		v->done_tail->done_next = m;
	else
		v->done_head = m;
	v->done_tail = m;
	if (++v->ndone <= MIG_KEEP_FINISHED)
		return;
	struct mig *old = v->done_head;

	v->done_head = old->done_next;
	if (!v->done_head)
		v->done_tail = NULL;
	old->dropped = true;
	v->ndone--;
	v->dropped++;
	prune_locked(v);
}

static void mig_free(struct mig *m)
{
	for (int i = 0; i < MIG_REGIONS; i++)
		pthread_mutex_destroy(&m->region[i]);
	free(m->queued_path);
	free(m);
}

/* Free the dropped records nothing refers to any more: the scheduler released the
 * job (on_event will not name it again) and the thread has exited (it is joined
 * here: past thread_exited it touches nothing). */
static void prune_locked(struct vds *v)
{
	for (struct mig *m = v->migs, *next; m; m = next) {
		next = m->next;
		if (!m->dropped || !m->released || (m->thread_started && !m->thread_exited))
			continue;
		if (m->thread_started)
			pthread_join(m->thread, NULL);
		unregister_locked(v, m);
		mig_free(m);
	}
}

struct mig *mig_new(struct vds *v, const char *path, int src, int dst, uint64_t bw)
{
	struct mig *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->v = v;
	m->src = src;
	m->dst = dst;
	m->bwlimit = bw;
	m->base_fd = m->diff_fd = m->copy_fd = m->mirror_fd = -1;
	snprintf(m->path, sizeof(m->path), "%s", path);
	for (int i = 0; i < MIG_REGIONS; i++)
		pthread_mutex_init(&m->region[i], NULL);
	m->queued_ns = now_real();
	return m;
}

/* Pin the file's node and open-file object for the migration's lifetime. The file
 * must still be the one mig_check() saw (st): a rename in between makes it fail. */
static int mig_bind(struct mig *m, const struct stat *checked)
{
	struct vds *v = m->v;
	struct stat st;
	int fd = bn_open(v->ds[m->src].fd, m->path, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH) < 0) {
		close(fd);
		return -errno;
	}
	if (st.st_dev != checked->st_dev || st.st_ino != checked->st_ino) {
		close(fd);
		return -ESTALE;
	}
	m->src_dev = st.st_dev;
	m->src_ino = st.st_ino;
	m->node = node_pin_file(&v->nodes, m->src, fd, &st);
	if (!m->node)
		return -ENOMEM;
	m->vf = vfile_get(m->node);
	if (!m->vf) {
		node_unpin(&v->nodes, m->node);
		return -ENOMEM;
	}
	return 0;
}

/* Undo mig_bind() of a migration that was never queued. */
static void mig_unbind(struct mig *m)
{
	if (m->vf)
		vfile_put(m->v, m->vf);
	if (m->node)
		node_unpin(&m->v->nodes, m->node);
	mig_free(m);
}

/* Check, then pin, one file of a request: a new unqueued migration, or NULL with
 * *ret and err set. */
static struct mig *mig_prepare_one(struct vds *v, const char *path, int dst,
				   const struct mig_opts *o, int *ret, char *err, size_t len)
{
	struct mig_space sp = { 0 };
	struct stat st;
	struct mig *m;
	int src;

	pthread_rwlock_rdlock(&v->ns_lock);
	*ret = check_file(v, path, dst, o, &sp, err, len);
	src = *ret ? *ret : vds_find_beneath(v, path, &st);
	pthread_rwlock_unlock(&v->ns_lock);
	if (!*ret && src < 0)
		*ret = errf(err, len, src, "%s: %s", path, strerror(-src));
	if (*ret)
		return NULL;
	m = mig_new(v, path, src, dst, o->bwlimit);
	if (m) {
		m->space_check = o->space_check;
		m->space_need = sp.allocated + sp.growth;
	}
	if (m && !(m->queued_path = strdup(path))) {
		mig_free(m);
		m = NULL;
	}
	if (!m) {
		*ret = errf(err, len, -ENOMEM, "%s: %s", path, strerror(ENOMEM));
		return NULL;
	}
	/* Outside ns_lock: binding takes vfile_lock, which a switch holds while it
	 * waits for ns_lock exclusive. */
	*ret = mig_bind(m, &st);
	if (*ret) {
		errf(err, len, *ret, "%s: %s", path, *ret == -ESTALE ?
		     "replaced while the request was being checked" : strerror(-*ret));
		mig_unbind(m);
		return NULL;
	}
	return m;
}

int mig_submit(struct vds *v, const char *const *paths, const int *dsts, size_t n,
	       const struct mig_opts *o, uint64_t *ids, char *err, size_t len)
{
	struct mig **ms = calloc(n ? n : 1, sizeof(*ms));
	size_t queued = 0;
	int ret = ms ? 0 : errf(err, len, -ENOMEM, "out of memory%s%s", "", "");

	/* Every file is checked before the first is pinned: a bad request pins nothing. */
	for (size_t i = 0; !ret && i < n; i++)
		ret = mig_check(v, paths[i], dsts[i], o, err, len);
	if (!ret && n > 1)
		ret = check_sums(v, paths, dsts, n, o, err, len);
	for (size_t i = 0; !ret && i < n; i++)
		ms[i] = mig_prepare_one(v, paths[i], dsts[i], o, &ret, err, len);
	if (ret) {
		for (size_t i = 0; ms && i < n && ms[i]; i++)
			mig_unbind(ms[i]);
		free(ms);
		return ret;
	}
	/* Before the first job is queued, so that it already holds for them. */
	if (o->parallel)
		sched_set_max_running(v->sched, o->parallel);
	pthread_mutex_lock(&v->mig_lock);
	prune_locked(v);
	/* Jobs start only once mig_lock is released (job_run takes it). */
	for (; queued < n; queued++) {
		struct mig *m = ms[queued];

		m->id = v->next_mig_id++;
		snprintf(m->name, sizeof(m->name), "mig-%llu", (unsigned long long)m->id);
		m->job = sched_submit(v->sched, m->src, m->dst, m->path, &mig_job_ops, m);
		if (!m->job)
			break;
		ids[queued] = m->id;
		mig_register_locked(v, m);
	}
	if (queued < n) {
		/* Out of memory in the scheduler: take back what was queued (those records
		 * end "cancelled") and drop the rest. */
		for (size_t i = 0; i < queued; i++) {
			atomic_store(&ms[i]->cancel, true);
			snprintf(ms[i]->msg, sizeof(ms[i]->msg), "cancelled: the request failed");
		}
		ret = errf(err, len, -ENOMEM, "out of memory queueing %s; the migrations queued before it "
			   "were cancelled%s", paths[queued], "");
	}
	pthread_mutex_unlock(&v->mig_lock);
	for (size_t i = 0; i < n; i++)
		if (i < queued && ret)
			sched_cancel(v->sched, ms[i]->job);
		else if (i >= queued)
			mig_unbind(ms[i]);
	free(ms);
	return ret;
}

static struct mig *find_id_locked(struct vds *v, uint64_t id)
{
	for (struct mig *m = v->migs; m; m = m->next)
		if (m->id == id && !m->dropped)
			return m;
	return NULL;
}

int mig_cancel(struct vds *v, uint64_t id, char *err, size_t len)
{
	uint64_t job = 0;
	int ret = 0;

	pthread_mutex_lock(&v->mig_lock);
	struct mig *m = find_id_locked(v, id);
	if (!m)
		ret = -ENOENT, snprintf(err, len, "no migration %llu%s", (unsigned long long)id,
					id < v->next_mig_id ? MIG_DROPPED_HINT : "");
	else if (m->phase >= MIG_DONE)
		ret = -EINVAL, snprintf(err, len, "migration %llu is already %s",
					(unsigned long long)id, mig_phase_name(m->phase));
	else if (m->phase == MIG_SWITCHING)
		ret = -EBUSY, snprintf(err, len, "migration %llu is switching; too late to cancel",
				       (unsigned long long)id);
	else {
		atomic_store(&m->cancel, true);
		job = m->job;
	}
	pthread_mutex_unlock(&v->mig_lock);
	if (job)
		sched_cancel(v->sched, job);
	return ret;
}

static json_object *mig_json_locked(struct mig *m)
{
	json_object *o = json_object_new_object();
	double eta = (m->rate > 0 && m->total > m->done) ? (m->total - m->done) / m->rate : 0;
	struct stat st;
	char name[48];
	int64_t diff = 0;

	snprintf(name, sizeof(name), "%s.diff", m->name);
	if (m->phase < MIG_DONE && fstatat(m->v->ds[m->src].state_fd, name, &st, 0) == 0)
		diff = (int64_t)st.st_blocks * 512;
	json_object_object_add(o, "id", json_object_new_int64((int64_t)m->id));
	json_object_object_add(o, "path", json_object_new_string(m->path));
	json_object_object_add(o, "from", json_object_new_string(m->v->ds[m->src].name));
	json_object_object_add(o, "to", json_object_new_string(m->v->ds[m->dst].name));
	json_object_object_add(o, "phase", json_object_new_string(mig_phase_name(m->phase)));
	json_object_object_add(o, "bytes_copied", json_object_new_int64((int64_t)m->done));
	json_object_object_add(o, "bytes_total", json_object_new_int64((int64_t)m->total));
	json_object_object_add(o, "rate", json_object_new_double(m->rate));
	json_object_object_add(o, "eta_s", json_object_new_double(eta));
	json_object_object_add(o, "diff_bytes", json_object_new_int64(diff));
	json_object_object_add(o, "merged_bytes", json_object_new_int64((int64_t)m->merged_bytes));
	json_object_object_add(o, "copy_ms", json_object_new_double(m->copy_ns / 1e6));
	json_object_object_add(o, "converge_ms", json_object_new_double(m->converge_ns / 1e6));
	json_object_object_add(o, "flush_ms", json_object_new_double(m->flush_ns / 1e6));
	json_object_object_add(o, "pause_ms", json_object_new_double(m->pause_ns / 1e6));
	json_object_object_add(o, "cleanup_ms", json_object_new_double(m->cleanup_ns / 1e6));
	json_object_object_add(o, "queued_ns", json_object_new_int64((int64_t)m->queued_ns));
	json_object_object_add(o, "started_ns", json_object_new_int64((int64_t)m->started_ns));
	json_object_object_add(o, "ended_ns", json_object_new_int64((int64_t)m->ended_ns));
	json_object_object_add(o, "started_seq", json_object_new_int64((int64_t)m->started_seq));
	json_object_object_add(o, "ended_seq", json_object_new_int64((int64_t)m->ended_seq));
	json_object_object_add(o, "recovered", json_object_new_boolean(m->recovered));
	if (m->msg[0])
		json_object_object_add(o, m->err ? "error" : "note", json_object_new_string(m->msg));
	if (m->held_at)
		json_object_object_add(o, "held_at", json_object_new_string(m->held_at));
	return o;
}

json_object *mig_status(struct vds *v, uint64_t id, uint64_t *dropped)
{
	json_object *arr = json_object_new_array();

	pthread_mutex_lock(&v->mig_lock);
	prune_locked(v);
	for (struct mig *m = v->migs; m; m = m->next)
		if ((!id || m->id == id) && !m->dropped)
			json_object_array_add(arr, mig_json_locked(m));
	*dropped = v->dropped;
	pthread_mutex_unlock(&v->mig_lock);
	return arr;
}

struct ev_ref {
	uint64_t seq, ts;
	int type;
	const struct mig *m;
};

static int cmp_ev(const void *a, const void *b)
{
	const struct ev_ref *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static json_object *event_json(struct vds *v, const struct ev_ref *e)
{
	json_object *o = json_object_new_object();
	const struct mig *m = e->m;

	json_object_object_add(o, "seq", json_object_new_int64((int64_t)e->seq));
	json_object_object_add(o, "ts_ns", json_object_new_int64((int64_t)e->ts));
	json_object_object_add(o, "event", json_object_new_string(sched_event_name(e->type)));
	json_object_object_add(o, "id", json_object_new_int64((int64_t)m->id));
	json_object_object_add(o, "path", json_object_new_string(m->queued_path));
	json_object_object_add(o, "from", json_object_new_string(v->ds[m->src].name));
	json_object_object_add(o, "to", json_object_new_string(v->ds[m->dst].name));
	return o;
}

json_object *mig_events(struct vds *v, uint64_t *dropped)
{
	json_object *arr = json_object_new_array();
	struct ev_ref *ev = NULL;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&v->mig_lock);
	for (const struct mig *m = v->migs; m; m = m->next) {
		if (m->dropped || !m->queued_seq)
			continue;
		if (n + 3 > cap) {
			struct ev_ref *p = realloc(ev, (cap = cap ? cap * 2 : 192) * sizeof(*p));

			if (!p)
				break;	/* out of memory: the events listed so far */
			ev = p;
		}
		ev[n++] = (struct ev_ref){ m->queued_seq, m->queued_ts, SCHED_EV_QUEUED, m };
		if (m->started_seq)
			ev[n++] = (struct ev_ref){ m->started_seq, m->started_ts, SCHED_EV_STARTED, m };
		if (m->ended_seq)
			ev[n++] = (struct ev_ref){ m->ended_seq, m->ended_ts, m->end_event, m };
	}
	if (n)
		qsort(ev, n, sizeof(*ev), cmp_ev);
	for (size_t i = 0; i < n; i++)
		json_object_array_add(arr, event_json(v, &ev[i]));
	*dropped = v->dropped;
	pthread_mutex_unlock(&v->mig_lock);
	free(ev);
	return arr;
}

/* How many switched migrations still have their source (hidden by mig_hides). */
static atomic_int stale_sources;

void mig_set_stale_locked(struct mig *m, bool stale)
{
	if (m->stale != stale)
		atomic_fetch_add(&stale_sources, stale ? 1 : -1);
	m->stale = stale;
}

bool mig_hides(struct vds *v, int ds, const struct stat *st)
{
	bool hide = false;

	if (!atomic_load(&stale_sources))
		return false;
	pthread_mutex_lock(&v->mig_lock);
	for (struct mig *m = v->migs; m && !hide; m = m->next)
		hide = m->stale && m->src == ds && m->src_dev == st->st_dev && m->src_ino == st->st_ino;
	pthread_mutex_unlock(&v->mig_lock);
	return hide;
}

/* If path is `from` or lies below it, rewrite that prefix to `to`: true when m's
 * path changed. Caller holds v->mig_lock. Stuck migrations follow too (their journal
 * names the file). A switched file whose old copy is still there (stale) only
 * follows a folder's rename: the journal must keep naming the old copy, which a
 * rename of the file itself leaves behind. */
static bool path_follow_locked(struct vds *v, struct mig *m, const char *from, const char *to)
{
	size_t fl = strlen(from);
	char buf[4096];

	if ((m->phase >= MIG_DONE && !m->stuck) || strncmp(m->path, from, fl) ||
	    (m->path[fl] && m->path[fl] != '/') || (m->stale && !m->path[fl]))
		return false;
	if (snprintf(buf, sizeof(buf), "%s%s", to, m->path + fl) >= (int)sizeof(buf))
		return false;
	strcpy(m->path, buf);
	m->path_gen++;
	if (m->phase > MIG_QUEUED)
		journal_rewrite_locked(v, m);
	return true;
}

/* rename(2) of a migrating file or of a directory above it: the migration follows,
 * so the switch puts the file at its current name, and the journal tells recovery
 * that name. */
void mig_path_moved(struct vds *v, const char *from, const char *to)
{
	pthread_mutex_lock(&v->mig_lock);
	for (struct mig *m = v->migs; m; m = m->next)
		path_follow_locked(v, m, from, to);
	pthread_mutex_unlock(&v->mig_lock);
}

/* rename(2) with RENAME_EXCHANGE: the two files swapped names. */
void mig_path_exchanged(struct vds *v, const char *a, const char *b)
{
	pthread_mutex_lock(&v->mig_lock);
	for (struct mig *m = v->migs; m; m = m->next)
		if (!path_follow_locked(v, m, a, b))
			path_follow_locked(v, m, b, a);
	pthread_mutex_unlock(&v->mig_lock);
}

/* unlink(2) of a migrating file: there is nothing left to move, roll back. (While
 * switching, the switch sees it for itself: mig_switch.c, step 7.) Unlinking a stuck
 * migration's file drops its differencing file, copy and journal: open handles keep
 * their fds, and the next mount must not bring the file back. */
void mig_path_unlinked(struct vds *v, const char *path)
{
	struct mig *stuck = NULL;
	uint64_t job = 0;

	pthread_mutex_lock(&v->mig_lock);
	struct mig *m = find_active_path_locked(v, path);
	if (m && m->phase != MIG_SWITCHING) {
		atomic_store(&m->cancel, true);
		job = m->job;
		snprintf(m->msg, sizeof(m->msg), "the file was removed during the migration");
	}
	for (struct mig *s = v->migs; s && !m && !stuck; s = s->next)
		if (s->stuck && !strcmp(s->path, path))
			stuck = s;	/* never freed before the daemon exits */
	pthread_mutex_unlock(&v->mig_lock);
	if (job)
		sched_cancel(v->sched, job);
	if (stuck)
		mig_drop_files(stuck, false);
}

void mig_shutdown(struct vds *v)
{
	pthread_mutex_lock(&v->mig_lock);
	for (struct mig *m = v->migs; m; m = m->next)
		if (m->phase < MIG_DONE) {
			atomic_store(&m->stopping, true);
			atomic_store(&m->cancel, true);
		}
	pthread_mutex_unlock(&v->mig_lock);
	testpoint_wake();
	mig_switch_wake(v);
	if (v->sched)
		sched_free(v->sched);	/* cancels the queue, waits for running jobs */
	v->sched = NULL;
	for (struct mig *m = v->migs, *next; m; m = next) {
		next = m->next;
		if (m->thread_started)
			pthread_join(m->thread, NULL);
		mig_release_stuck(m);
		mig_free(m);
	}
	v->migs = v->migs_tail = v->done_head = v->done_tail = NULL;
}
