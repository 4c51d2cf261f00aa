/* registry.c - the migrations of a mount, and what the other layers ask of them:
 * validate and submit, cancel, status and events, and the namespace's hooks.
 *
 * A request is checked completely before anything changes (bad requests change
 * nothing). Records of finished migrations stay in the registry so that status can
 * report them, crash recoveries included: the most recent MIG_KEEP_FINISHED of them.
 * An older one is dropped from the listing at once and freed once nothing refers
 * to it: the scheduler's events name a record until its job is released, its thread
 * until it exits, a caller that took a reference (refs) until it lets go. The
 * scheduler keeps no event log for the daemon; each record keeps its own events
 * (queued, started, ended), so nothing can outlive it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "clock.h"
#include "copier.h"
#include "errmsg.h"
#include "journal.h"
#include "log.h"
#include "mig_int.h"
#include "paths.h"
#include "scheduler.h"
#include "testpoint.h"


static void prune_locked(struct migs *g);

static uint64_t now_real_ns(void)
{
	return vds_now_ns(CLOCK_REALTIME);
}

/* --- lookups ------------------------------------------------------------------------ */

static struct mig *find_active_path_locked(struct migs *g, const char *path)
{
	for (struct mig *m = g->head; m; m = m->next)
		if (!mig_phase_final(m->phase) && !strcmp(m->path, path))
			return m;
	return NULL;
}

uint64_t mig_of_path(struct migs *g, const char *path)
{
	migs_lock(g);
	struct mig *m = find_active_path_locked(g, path);
	uint64_t id = m ? m->id : 0;
	migs_unlock(g);
	return id;
}

int mig_active_on(struct migs *g, int ds)
{
	int n = 0;

	migs_lock(g);
	for (struct mig *m = g->head; m; m = m->next)
		n += !mig_phase_final(m->phase) && (m->src == ds || m->dst == ds);
	migs_unlock(g);
	return n;
}

static struct mig *find_id_locked(struct migs *g, uint64_t id)
{
	for (struct mig *m = g->head; m; m = m->next)
		if (m->id == id && !m->dropped)
			return m;
	return NULL;
}

/* --- checking a request ------------------------------------------------------------- */

/* Could path move to datastore dst now? Also counts the file into *sp when it can. */
static int check_file(struct migs *g, const char *path, int dst, const struct mig_opts *o,
		      struct mig_space *sp, char *err, size_t len)
{
	const struct store *s = g->store;
	struct mig_space one = { 0 };
	struct stat st;
	int src, ret;

	if (!vds_path_sane(path))
		return vds_err(err, len, -EINVAL, "%s: not a path inside the mount", path);
	if (dst < 0 || dst >= s->nds)
		return vds_err(err, len, -EINVAL, "unknown datastore");
	src = ns_find_beneath(g->ns, path, &st);
	if (src < 0)
		return vds_err(err, len, src, "%s: %s", path, src == -EINVAL ?
			       "leads through a symlink or out of the datastore" : strerror(-src));
	if (!S_ISREG(st.st_mode))
		return vds_err(err, len, -EINVAL, "%s: not a regular file", path);
	if (src == dst)
		return vds_err(err, len, -EINVAL, "%s is already on datastore %s", path, s->ds[dst].name);
	if (st.st_nlink > 1)
		return vds_err(err, len, -EMLINK,
			       "%s is hard-linked; hard links cannot move between datastores", path);
	if (mig_of_path(g, path))
		return vds_err(err, len, -EBUSY, "%s is already migrating", path);
	mig_space_add(g, &one, &st);
	ret = mig_space_verdict(g, dst, &one, o, path, err, len);
	if (!ret && sp) {
		sp->allocated += one.allocated;
		sp->rate += one.rate;
		sp->growth += one.growth;	/* this file's own estimate, for space_need */
		sp->files++;
	}
	return ret;
}

/* A request moving several files to one datastore must fit there as a whole. */
static int check_sums(struct migs *g, const char *const *paths, const int *dsts, size_t n,
		      const struct mig_opts *o, char *err, size_t len)
{
	for (int d = 0; d < g->store->nds; d++) {
		struct mig_space sp = { 0 };
		char what[64];
		int ret;

		for (size_t i = 0; i < n; i++) {
			struct stat st;

			if (dsts[i] == d && ns_find_beneath(g->ns, paths[i], &st) >= 0)
				mig_space_add(g, &sp, &st);
		}
		if (sp.files < 2)
			continue;	/* one file: checked on its own already */
		snprintf(what, sizeof(what), "the %u files this request moves there", sp.files);
		ret = mig_space_verdict(g, d, &sp, o, what, err, len);
		if (ret)
			return ret;
	}
	return 0;
}

/* --- scheduler glue ------------------------------------------------------------------ */

static void job_run(struct sched_job *job)
{
	struct mig *m = sched_job_user(job);

	m->sjob = job;
	migs_lock(m->g);
	m->phase = m->resumed ? m->resume_phase : MIG_PREPARING;
	m->started_ns = now_real_ns();
	migs_unlock(m->g);
	mig_thread_start(m);
}

static void job_cancel(struct sched_job *job)
{
	struct mig *m = sched_job_user(job);

	atomic_store(&m->cancel, true);
}

/* The scheduler has delivered the job's last event and forgets it. */
static void job_release(struct sched_job *job)
{
	struct mig *m = sched_job_user(job);
	struct migs *g = m->g;

	migs_lock(g);
	m->released = true;
	prune_locked(g);
	migs_unlock(g);
}

static const struct sched_job_ops mig_job_ops = {
	.run = job_run,
	.cancel = job_cancel,
	.release = job_release,
};

/* Scheduler thread, in sequence order, no scheduler lock held; m lives at least
 * until job_release(). */
static void on_event(void *arg, const struct sched_event *ev)
{
	struct migs *g = arg;
	struct mig *m = ev->user;

	if (!m || ev->type == SCHED_EV_PROGRESS)
		return;
	migs_lock(g);
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
			m->ended_ns = now_real_ns();
			mig_finished_locked(g, m);
		}
	}
	migs_unlock(g);
	if (ev->type == SCHED_EV_CANCELLED && !m->sjob && m->vf) {
		node_unpin(&g->ns->nodes, m->node);
		vfile_put(g->ns, m->vf);
		m->vf = NULL;
	}
}

/* --- lifetime of the registry ------------------------------------------------------- */

int migs_new(struct store *s, struct ns *ns, struct migs **out)
{
	struct migs *g = calloc(1, sizeof(*g));

	if (!g)
		return -ENOMEM;
	g->store = s;
	g->ns = ns;
	g->next_id = 1;
	g->resume = true;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->retry, NULL);
	*out = g;
	return 0;
}

int mig_resume_later(struct migs *g, struct mig *m)
{
	if (g->npending == g->pending_cap) {
		size_t cap = g->pending_cap ? g->pending_cap * 2 : 8;
		struct mig **p = realloc(g->pending, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		g->pending = p;
		g->pending_cap = cap;
	}
	g->pending[g->npending++] = m;
	return 0;
}

/* The migrations recovery resumed go to the scheduler like any request's, so the
 * distinct-datastore rule holds for them too. Out of memory in the scheduler, one
 * stays queued in the registry as failed; its route keeps serving the file and
 * the next mount resumes it (its journal is kept). */
static void queue_resumed(struct migs *g)
{
	migs_lock(g);
	for (size_t i = 0; i < g->npending; i++) {
		struct mig *m = g->pending[i];

		m->job = sched_submit(g->sched, m->src, m->dst, m->path, &mig_job_ops, m);
		if (!m->job) {
			m->phase = MIG_FAILED;
			m->stuck = true;
			snprintf(m->msg, sizeof(m->msg), "could not queue the resumed migration "
				 "(out of memory); the next mount resumes it");
		}
	}
	migs_unlock(g);
	free(g->pending);
	g->pending = NULL;
	g->npending = g->pending_cap = 0;
}

int migs_start(struct migs *g)
{
	/* No scheduler log: its events would name records after they are freed. */
	struct sched_opts o = { .max_running = 4, .per_ds = 1, .on_event = on_event,
				.event_arg = g };

	g->sched = sched_new(&o);
	if (!g->sched)
		return -ENOMEM;
	queue_resumed(g);
	return 0;
}

void migs_set_resume(struct migs *g, bool on)
{
	g->resume = on;
}

void migs_shutdown(struct migs *g)
{
	migs_lock(g);
	for (struct mig *m = g->head; m; m = m->next) {
		if (!mig_phase_final(m->phase))
			atomic_store(&m->cancel, true);
		/* A finished one's thread may still be retrying a cleanup. */
		if (!mig_phase_final(m->phase) || (m->thread_started && !m->thread_exited))
			atomic_store(&m->stopping, true);
	}
	pthread_cond_broadcast(&g->retry);	/* a switch waiting to retry an unlink */
	migs_unlock(g);
	testpoint_wake();
	if (g->sched)
		sched_free(g->sched);	/* cancels the queue, waits for running jobs */
	g->sched = NULL;
	for (struct mig *m = g->head, *next; m; m = next) {
		next = m->next;
		if (m->thread_started)
			pthread_join(m->thread, NULL);
		mig_release_stuck(m);
		mig_free(m);
	}
	g->head = g->tail = g->done_head = g->done_tail = NULL;
}

void migs_free(struct migs *g)
{
	if (!g)
		return;
	free(g->pending);
	pthread_cond_destroy(&g->retry);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

/* --- the records ------------------------------------------------------------------- */

struct mig *mig_new(struct migs *g, const char *path, int src, int dst, uint64_t bw)
{
	struct mig *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->g = g;
	m->src = src;
	m->dst = dst;
	m->bwlimit = bw;
	m->base_fd = m->diff_fd = m->copy_fd = m->mirror_fd = -1;
	m->journal_phase = MIG_NO_PHASE;
	snprintf(m->path, sizeof(m->path), "%s", path);
	pthread_mutex_init(&m->jlock, NULL);
	pthread_rwlock_init(&m->span, NULL);
	for (int i = 0; i < MIG_REGIONS; i++)
		pthread_mutex_init(&m->region[i], NULL);
	m->queued_ns = now_real_ns();
	m->resume_phase = MIG_QUEUED;
	return m;
}

void mig_free(struct mig *m)
{
	for (int i = 0; i < MIG_REGIONS; i++)
		pthread_mutex_destroy(&m->region[i]);
	pthread_rwlock_destroy(&m->span);
	pthread_mutex_destroy(&m->jlock);
	free(m->queued_path);
	free(m);
}

void mig_register_locked(struct migs *g, struct mig *m)
{
	m->prev = g->tail;
	if (g->tail)
		g->tail->next = m;
	else
		g->head = m;
	g->tail = m;
}

static void unregister_locked(struct migs *g, struct mig *m)
{
	if (m->prev)
		m->prev->next = m->next;
	else
		g->head = m->next;
	if (m->next)
		m->next->prev = m->prev;
	else
		g->tail = m->prev;
}

/* Only the most recent MIG_KEEP_FINISHED finished records stay listed, so a daemon
 * that has run a million migrations does not keep a million records. A stuck one
 * (its overlay still carries the file's I/O) is never dropped. */
void mig_finished_locked(struct migs *g, struct mig *m)
{
	struct mig *old;

	if (m->stuck)
		return;
	if (g->done_tail)
		g->done_tail->done_next = m;
	else
		g->done_head = m;
	g->done_tail = m;
	if (++g->ndone <= MIG_KEEP_FINISHED)
		return;
	old = g->done_head;
	g->done_head = old->done_next;
	if (!g->done_head)
		g->done_tail = NULL;
	old->dropped = true;
	g->ndone--;
	g->dropped++;
	prune_locked(g);
}

/* Free the dropped records nothing refers to any more: the scheduler released the
 * job (on_event will not name it again), the thread has exited (it is joined here:
 * past thread_exited it touches nothing) and no caller holds a reference. */
static void prune_locked(struct migs *g)
{
	for (struct mig *m = g->head, *next; m; m = next) {
		next = m->next;
		if (!m->dropped || !m->released || m->refs ||
		    (m->thread_started && !m->thread_exited))
			continue;
		if (m->thread_started)
			pthread_join(m->thread, NULL);
		unregister_locked(g, m);
		mig_free(m);
	}
}

/* --- submit ---------------------------------------------------------------------------- */

/* The file must still be the one the check saw (checked): a rename in between makes
 * it fail with -ESTALE. */
int mig_bind(struct mig *m, const struct stat *checked)
{
	struct migs *g = m->g;
	struct stat st;
	int fd = bn_open(g->store->ds[m->src].fd, m->path, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);

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
	m->node = node_pin_file(&g->ns->nodes, m->src, fd, &st);
	if (!m->node)
		return -ENOMEM;
	m->vf = vfile_get(g->ns, m->node);
	if (!m->vf) {
		node_unpin(&g->ns->nodes, m->node);
		m->node = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Undo mig_bind() of a migration that was never queued, and free it. */
static void mig_unbind(struct mig *m)
{
	if (m->vf)
		vfile_put(m->g->ns, m->vf);
	if (m->node)
		node_unpin(&m->g->ns->nodes, m->node);
	mig_free(m);
}

/* Check, then pin, one file of a request: a new unqueued migration, or NULL with
 * *ret and err set. */
static struct mig *prepare_one(struct migs *g, const char *path, int dst,
			       const struct mig_opts *o, int *ret, char *err, size_t len)
{
	struct mig_space sp = { 0 };
	struct stat st;
	struct mig *m;
	int src;

	ns_lock_shared(g->ns);
	*ret = check_file(g, path, dst, o, &sp, err, len);
	src = *ret ? *ret : ns_find_beneath(g->ns, path, &st);
	ns_unlock(g->ns);
	if (!*ret && src < 0)
		*ret = vds_err(err, len, src, "%s: %s", path, strerror(-src));
	if (*ret)
		return NULL;
	m = mig_new(g, path, src, dst, o->bwlimit);
	if (m) {
		m->space_check = o->space_check;
		m->space_need = sp.allocated + sp.growth;
	}
	if (m && !(m->queued_path = strdup(path))) {
		mig_free(m);
		m = NULL;
	}
	if (!m) {
		*ret = vds_err(err, len, -ENOMEM, "%s: %s", path, strerror(ENOMEM));
		return NULL;
	}
	*ret = mig_bind(m, &st);
	if (*ret) {
		vds_err(err, len, *ret, "%s: %s", path, *ret == -ESTALE ?
			"replaced while the request was being checked" : strerror(-*ret));
		mig_unbind(m);
		return NULL;
	}
	return m;
}

int mig_submit(struct migs *g, const char *const *paths, const int *dsts, size_t n,
	       const struct mig_opts *o, uint64_t *ids, char *err, size_t len)
{
	struct mig **ms = calloc(n ? n : 1, sizeof(*ms));
	size_t queued = 0;
	int ret = ms ? 0 : vds_err(err, len, -ENOMEM, "out of memory");

	/* Every file is checked before the first is pinned: a bad request pins nothing. */
	for (size_t i = 0; !ret && i < n; i++) {
		ns_lock_shared(g->ns);
		ret = check_file(g, paths[i], dsts[i], o, NULL, err, len);
		ns_unlock(g->ns);
	}
	if (!ret && n > 1)
		ret = check_sums(g, paths, dsts, n, o, err, len);
	for (size_t i = 0; !ret && i < n; i++)
		ms[i] = prepare_one(g, paths[i], dsts[i], o, &ret, err, len);
	if (ret) {
		for (size_t i = 0; ms && i < n && ms[i]; i++)
			mig_unbind(ms[i]);
		free(ms);
		return ret;
	}
	/* Before the first job is queued, so that it already holds for them. */
	if (o->parallel)
		sched_set_max_running(g->sched, o->parallel);
	migs_lock(g);
	prune_locked(g);
	/* Jobs start only once the registry's lock is released (job_run takes it). */
	for (; queued < n; queued++) {
		struct mig *m = ms[queued];

		m->id = g->next_id++;
		snprintf(m->name, sizeof(m->name), "mig-%llu", (unsigned long long)m->id);
		m->job = sched_submit(g->sched, m->src, m->dst, m->path, &mig_job_ops, m);
		if (!m->job)
			break;
		ids[queued] = m->id;
		mig_register_locked(g, m);
	}
	if (queued < n) {
		/* Out of memory in the scheduler: take back what was queued (those records
		 * end "cancelled") and drop the rest. */
		for (size_t i = 0; i < queued; i++) {
			atomic_store(&ms[i]->cancel, true);
			snprintf(ms[i]->msg, sizeof(ms[i]->msg), "cancelled: the request failed");
		}
		ret = vds_err(err, len, -ENOMEM, "out of memory queueing %s; the migrations queued "
			      "before it were cancelled", paths[queued]);
	}
	migs_unlock(g);
	for (size_t i = 0; i < n; i++)
		if (i < queued && ret)
			sched_cancel(g->sched, ms[i]->job);
		else if (i >= queued)
			mig_unbind(ms[i]);
	free(ms);
	return ret;
}

int mig_cancel(struct migs *g, uint64_t id, char *err, size_t len)
{
	uint64_t job = 0;
	int ret = 0;

	migs_lock(g);
	struct mig *m = find_id_locked(g, id);
	if (!m)
		ret = vds_err(err, len, -ENOENT, "no migration %llu%s", (unsigned long long)id,
			      id < g->next_id ? MIG_DROPPED_HINT : "");
	else if (mig_phase_final(m->phase))
		ret = vds_err(err, len, -EINVAL, "migration %llu is already %s",
			      (unsigned long long)id, mig_phase_name(m->phase));
	else if (m->phase == MIG_SWITCHING)
		ret = vds_err(err, len, -EBUSY, "migration %llu is switching; too late to cancel",
			      (unsigned long long)id);
	else {
		atomic_store(&m->cancel, true);
		job = m->job;
	}
	migs_unlock(g);
	if (job)
		sched_cancel(g->sched, job);
	return ret;
}

/* --- status and events, as plain data ------------------------------------------- */

static void info_locked(struct migs *g, const struct mig *m, struct mig_info *i)
{
	const struct store *s = g->store;
	struct stat st;
	char name[48];

	memset(i, 0, sizeof(*i));
	i->id = m->id;
	i->path = strdup(m->path);
	i->from = s->ds[m->src].name;
	i->to = s->ds[m->dst].name;
	i->phase = m->phase;
	i->bytes_copied = m->done;
	i->bytes_total = m->total;
	i->rate = m->rate;
	i->eta_s = (m->rate > 0 && m->total > m->done) ? (m->total - m->done) / m->rate : 0;
	snprintf(name, sizeof(name), "%s.diff", m->name);
	if (!mig_phase_final(m->phase) && fstatat(s->ds[m->src].state_fd, name, &st, 0) == 0)
		i->diff_bytes = (uint64_t)st.st_blocks * 512;
	i->merged_bytes = m->merged_bytes;
	i->copy_ns = m->copy_ns;
	i->converge_ns = m->converge_ns;
	i->flush_ns = m->flush_ns;
	i->pause_ns = m->pause_ns;
	i->cleanup_ns = m->cleanup_ns;
	i->queued_ns = m->queued_ns;
	i->started_ns = m->started_ns;
	i->ended_ns = m->ended_ns;
	i->started_seq = m->started_seq;
	i->ended_seq = m->ended_seq;
	i->recovered = m->recovered;
	i->resumed = m->resumed;
	i->resumed_from = m->resumed_from;
	i->recopied = m->recopied;
	i->is_error = m->err != 0;
	snprintf(i->msg, sizeof(i->msg), "%s", m->msg);
	i->held_at = m->held_at;
}

int mig_list(struct migs *g, uint64_t id, struct mig_info **out, size_t *n, uint64_t *dropped)
{
	struct mig_info *list = NULL;
	size_t cnt = 0, cap = 0;
	int ret = 0;

	migs_lock(g);
	prune_locked(g);
	for (struct mig *m = g->head; m && !ret; m = m->next) {
		if ((id && m->id != id) || m->dropped)
			continue;
		if (cnt == cap) {
			struct mig_info *p = realloc(list, (cap = cap ? cap * 2 : 16) * sizeof(*p));

			if (!p) {
				ret = -ENOMEM;
				break;
			}
			list = p;
		}
		info_locked(g, m, &list[cnt]);
		if (!list[cnt++].path)
			ret = -ENOMEM;
	}
	*dropped = g->dropped;
	migs_unlock(g);
	if (ret) {
		mig_info_free(list, cnt);
		return ret;
	}
	*out = list;
	*n = cnt;
	return 0;
}

void mig_info_free(struct mig_info *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i].path);
	free(list);
}

static int cmp_ev(const void *a, const void *b)
{
	const struct mig_event *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int add_event(struct mig_event **ev, size_t *n, size_t *cap, uint64_t seq, uint64_t ts,
		     int type, const struct mig *m, const struct store *s)
{
	if (*n == *cap) {
		struct mig_event *p = realloc(*ev, (*cap = *cap ? *cap * 2 : 64) * sizeof(*p));

		if (!p)
			return -ENOMEM;
		*ev = p;
	}
	(*ev)[*n] = (struct mig_event){ .seq = seq, .ts_ns = ts, .event = sched_event_name(type),
		.id = m->id, .path = strdup(m->queued_path), .from = s->ds[m->src].name,
		.to = s->ds[m->dst].name };
	return (*ev)[(*n)++].path ? 0 : -ENOMEM;
}

int mig_events(struct migs *g, struct mig_event **out, size_t *n, uint64_t *dropped)
{
	struct mig_event *ev = NULL;
	size_t cnt = 0, cap = 0;
	int ret = 0;

	migs_lock(g);
	for (const struct mig *m = g->head; m && !ret; m = m->next) {
		if (m->dropped || !m->queued_seq)
			continue;
		ret = add_event(&ev, &cnt, &cap, m->queued_seq, m->queued_ts, SCHED_EV_QUEUED, m,
				g->store);
		if (!ret && m->started_seq)
			ret = add_event(&ev, &cnt, &cap, m->started_seq, m->started_ts,
					SCHED_EV_STARTED, m, g->store);
		if (!ret && m->ended_seq)
			ret = add_event(&ev, &cnt, &cap, m->ended_seq, m->ended_ts, m->end_event, m,
					g->store);
	}
	*dropped = g->dropped;
	migs_unlock(g);
	if (ret) {
		mig_events_free(ev, cnt);
		return ret;
	}
	if (cnt)
		qsort(ev, cnt, sizeof(*ev), cmp_ev);
	*out = ev;
	*n = cnt;
	return 0;
}

void mig_events_free(struct mig_event *ev, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free((char *)ev[i].path);
	free(ev);
}

/* --- stale sources ---------------------------------------------------------------- */

void mig_set_stale_locked(struct mig *m, bool stale)
{
	m->stale = stale;
}

/* --- the namespace's hooks ------------------------------------------------------------ */

/* If m's path is `from` or lies below it, rewrite that prefix to `to`: true when it
 * changed. With g->lock held. Stuck migrations follow too (their journal names the
 * file). A switched file whose old copy is still there (stale) only follows a
 * folder's rename: the journal must keep naming the old copy, which a rename of the
 * file itself leaves behind. */
static bool path_follow_locked(struct migs *g, struct mig *m, const char *from, const char *to)
{
	size_t fl = strlen(from);
	char buf[sizeof(m->path)];

	if ((mig_phase_final(m->phase) && !m->stuck) || strncmp(m->path, from, fl) ||
	    (m->path[fl] && m->path[fl] != '/') || (m->stale && !m->path[fl]))
		return false;
	if (snprintf(buf, sizeof(buf), "%s%s", to, m->path + fl) >= (int)sizeof(buf)) {
		vds_log(LOG_ERR, "vdsfs: %s: the new path of %s is longer than %zu bytes; the "
			"migration keeps the old one\n", m->name, m->path, sizeof(buf));
		return false;
	}
	strcpy(m->path, buf);
	m->path_gen++;
	g->journals_dirty = true;
	return true;
}

void mig_path_moved(struct migs *g, const char *from, const char *to)
{
	migs_lock(g);
	for (struct mig *m = g->head; m; m = m->next)
		path_follow_locked(g, m, from, to);
	migs_unlock(g);
}

void mig_path_exchanged(struct migs *g, const char *a, const char *b)
{
	migs_lock(g);
	for (struct mig *m = g->head; m; m = m->next)
		if (!path_follow_locked(g, m, a, b))
			path_follow_locked(g, m, b, a);
	migs_unlock(g);
}

/* unlink(2) of a migrating file: there is nothing left to move, roll back. (While
 * switching, the switch sees it for itself: mig_switch.c, step 7.) Unlinking a stuck
 * migration's file drops its differencing file, copy and journal (in
 * mig_sync_journals): open handles keep their fds, and the next mount must not bring
 * the file back. */
void mig_path_unlinked(struct migs *g, const char *path)
{
	uint64_t job = 0;

	migs_lock(g);
	struct mig *m = find_active_path_locked(g, path);
	if (m && m->phase != MIG_SWITCHING) {
		atomic_store(&m->cancel, true);
		job = m->job;
		snprintf(m->msg, sizeof(m->msg), "the file was removed during the migration");
	}
	for (struct mig *s = g->head; s && !m; s = s->next)
		if (s->stuck && !s->drop_pending && !strcmp(s->path, path)) {
			s->drop_pending = true;
			g->journals_dirty = true;
			break;
		}
	migs_unlock(g);
	if (job)
		sched_cancel(g->sched, job);
}

/* The journal of m names the path it has now, unless m has no journal (yet, or any
 * more). Returns 0 or the write's error. */
static int sync_one(struct mig *m)
{
	unsigned gen;
	int ret = 0;

	lk_lock(&m->jlock, LK_JOURNAL);
	migs_lock(m->g);
	gen = m->path_gen;
	migs_unlock(m->g);
	if (m->journal_phase != MIG_NO_PHASE && m->journal_gen != gen)
		ret = journal_write(m, (enum mig_phase)m->journal_phase);
	lk_unlock(&m->jlock, LK_JOURNAL);
	return ret;
}

void mig_sync_journals(struct migs *g)
{
	struct todo {
		struct mig *m;
		bool drop;
	} *todo = NULL;
	size_t n = 0, cap = 0;

	migs_lock(g);
	if (!g->journals_dirty) {
		migs_unlock(g);
		return;
	}
	g->journals_dirty = false;
	for (struct mig *m = g->head; m; m = m->next) {
		if (m->dropped)
			continue;
		if (n == cap) {
			struct todo *p = realloc(todo, (cap = cap ? cap * 2 : 8) * sizeof(*p));

			if (!p) {
				g->journals_dirty = true;	/* the next call tries again */
				break;
			}
			todo = p;
		}
		m->refs++;
		todo[n++] = (struct todo){ m, m->drop_pending };
		m->drop_pending = false;
	}
	migs_unlock(g);
	for (size_t i = 0; i < n; i++) {
		struct mig *m = todo[i].m;
		int ret = todo[i].drop ? mig_drop_files(m, false) : sync_one(m);

		if (ret && !todo[i].drop)
			vds_log(LOG_ERR, "vdsfs: %s: recording the file's new path in the journal: "
				"%s\n", m->name, strerror(-ret));
	}
	migs_lock(g);
	for (size_t i = 0; i < n; i++)
		todo[i].m->refs--;
	prune_locked(g);
	migs_unlock(g);
	free(todo);
}

#ifdef VDS_TEST_HOOKS
void mig_test_release(struct migs *g)
{
	(void)g;
	testpoint_release();
}
#endif
