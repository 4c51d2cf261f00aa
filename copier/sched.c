/* sched.c -- the scheduler: distinct datastores, N at a time, FIFO but
 * work-conserving (scheduler.h states the contract).
 *
 * Design: every state change (submit, done, cancel, progress) happens under
 * s->lock and only bumps s->gen_req and wakes the scheduler thread. That one
 * thread does all the acting: it picks startable jobs, runs prechecks,
 * delivers events, calls run/cancel/release callbacks, frees jobs. Because a
 * single thread delivers, callbacks see events in sequence order; because
 * jobs are freed only by that thread, a callback it calls never races with
 * the job's release.
 *
 * Invariants (under s->lock):
 *  - a job's datastores are counted in ds[].running from the moment it is
 *    picked (JOB_STARTING) until sched_job_done() (JOB_DONE), so at every
 *    "started" event the running set obeys the limits;
 *  - s->running == number of jobs in STARTING or RUNNING;
 *  - events get seq numbers in the order they are queued, and are appended
 *    to s->pending; only the scheduler thread takes them out;
 *  - s->gen_done <= s->gen_req; gen_done == gen_req means the thread has
 *    acted on everything and delivered every event (sched_sync waits for it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched_int.h"

/* ---- events (under lock) ---- */

static int ev_push(struct sched_event **arr, size_t *n, size_t *cap,
		   const struct sched_event *ev)
{
	struct sched_event *a;

	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		a = realloc(*arr, *cap * sizeof(*a));
		if (!a)
			return -ENOMEM;
		*arr = a;
	}
	(*arr)[(*n)++] = *ev;
	return 0;
}

void sched_emit(struct sched *s, struct sched_job *j, enum sched_event_type t,
		int status, const char *msg)
{
	struct sched_event ev = {
		.seq = ++s->seq, .ts_ns = copier_now_ns(), .type = t, .job = j->id,
		.src_ds = j->src, .dst_ds = j->dst, .user = j->user,
		.done = j->last.done, .total = j->last.total,
		.resumed_from = j->last.resumed_from, .rate = j->last.rate,
		.checkpointed = j->last.checkpointed, .flags = j->last.flags,
		.status = status,
	};

	memcpy(ev.name, j->name, sizeof(ev.name));
	if (msg)
		snprintf(ev.msg, sizeof(ev.msg), "%s", msg);
	/* Out of memory loses an event, never a job state change. */
	if (s->keep_log)
		ev_push(&s->log, &s->nlog, &s->cap_log, &ev);
	ev_push(&s->pending, &s->npending, &s->cap_pending, &ev);
	s->gen_req++;
	pthread_cond_signal(&s->wake);
}

/* ---- public entry points ---- */

struct sched *sched_new(const struct sched_opts *o)
{
	struct sched *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->max_running = o && o->max_running ? o->max_running : 4;
	s->per_ds = o && o->per_ds ? o->per_ds : 1;
	s->keep_log = o && o->keep_log;
	s->on_event = o ? o->on_event : NULL;
	s->event_arg = o ? o->event_arg : NULL;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	pthread_cond_init(&s->idle, NULL);
	if (pthread_create(&s->thread, NULL, sched_main, s)) {
		pthread_mutex_destroy(&s->lock);
		free(s);
		return NULL;
	}
	return s;
}

uint64_t sched_submit_impl(struct sched *s, uint32_t src_ds, uint32_t dst_ds,
			   const char *name, const struct sched_job_ops *ops,
			   void *user, void *impl)
{
	struct sched_job *j;
	uint64_t id;

	if (!ops || !ops->run || src_ds >= SCHED_MAX_DS || dst_ds >= SCHED_MAX_DS)
		return 0;
	j = calloc(1, sizeof(*j));
	if (!j)
		return 0;
	j->s = s;
	j->src = src_ds;
	j->dst = dst_ds;
	j->ops = *ops;
	j->user = user;
	j->impl = impl;
	snprintf(j->name, sizeof(j->name), "%s", name ? name : "");
	pthread_mutex_lock(&s->lock);
	id = j->id = ++s->next_id;
	j->prev = s->tail;
	if (s->tail)
		s->tail->next = j;
	else
		s->head = j;
	s->tail = j;
	s->queued++;
	sched_emit(s, j, SCHED_EV_QUEUED, 0, NULL);
	pthread_mutex_unlock(&s->lock);
	return id;
}

uint64_t sched_submit(struct sched *s, uint32_t src_ds, uint32_t dst_ds,
		      const char *name, const struct sched_job_ops *ops, void *user)
{
	return sched_submit_impl(s, src_ds, dst_ds, name, ops, user, NULL);
}

static struct sched_job *job_find(struct sched *s, uint64_t id)
{
	struct sched_job *j;

	for (j = s->head; j; j = j->next)
		if (j->id == id)
			return j;
	return NULL;
}

int sched_cancel(struct sched *s, uint64_t id)
{
	struct sched_job *j;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	j = job_find(s, id);
	if (!j || j->state == JOB_DONE) {
		r = -ENOENT;
	} else if (j->state == JOB_QUEUED) {
		j->state = JOB_DONE;
		s->queued--;
		sched_emit(s, j, SCHED_EV_CANCELLED, -ECANCELED, "cancelled while queued");
	} else {
		atomic_store(&j->cancel, true);
		j->cancel_asked = true;  /* ops.cancel is called by the thread */
		s->gen_req++;
		pthread_cond_signal(&s->wake);
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

uint64_t sched_job_id(const struct sched_job *j) { return j->id; }
void *sched_job_user(const struct sched_job *j) { return j->user; }
uint32_t sched_job_src(const struct sched_job *j) { return j->src; }
uint32_t sched_job_dst(const struct sched_job *j) { return j->dst; }
void *sched_job_impl(const struct sched_job *j) { return j->impl; }
struct sched *sched_job_sched(const struct sched_job *j) { return j->s; }
atomic_bool *sched_job_cancel_flag(struct sched_job *j) { return &j->cancel; }

bool sched_job_cancelled(const struct sched_job *j)
{
	return atomic_load(&((struct sched_job *)j)->cancel);
}

void sched_job_progress(struct sched_job *j, const struct copier_progress *p)
{
	struct sched *s = j->s;

	pthread_mutex_lock(&s->lock);
	if (j->state == JOB_RUNNING) {
		j->last = *p;
		sched_emit(s, j, SCHED_EV_PROGRESS, 0, NULL);
	}
	pthread_mutex_unlock(&s->lock);
}

void sched_job_done(struct sched_job *j, int status, const char *msg)
{
	struct sched *s = j->s;
	enum sched_event_type t = status == 0 ? SCHED_EV_FINISHED :
		status == -ECANCELED ? SCHED_EV_CANCELLED : SCHED_EV_FAILED;

	pthread_mutex_lock(&s->lock);
	if (j->state == JOB_RUNNING) {  /* a second call is ignored */
		j->state = JOB_DONE;
		sched_ds_count(s, j, -1);
		sched_emit(s, j, t, status, status ? (msg && *msg ? msg : strerror(-status)) : NULL);
	}
	pthread_mutex_unlock(&s->lock);
}

bool sched_idle(const struct sched *s)
{
	return !s->queued && !s->running && !s->npending && s->gen_done == s->gen_req;
}

void sched_sync(struct sched *s)
{
	uint64_t target;

	pthread_mutex_lock(&s->lock);
	target = s->gen_req;
	while (s->gen_done < target)
		pthread_cond_wait(&s->idle, &s->lock);
	pthread_mutex_unlock(&s->lock);
}

void sched_wait_idle(struct sched *s)
{
	pthread_mutex_lock(&s->lock);
	while (!sched_idle(s))
		pthread_cond_wait(&s->idle, &s->lock);
	pthread_mutex_unlock(&s->lock);
}

int sched_log(struct sched *s, struct sched_event **evs, size_t *n)
{
	int r = 0;

	pthread_mutex_lock(&s->lock);
	*n = s->nlog;
	*evs = malloc((s->nlog ? s->nlog : 1) * sizeof(**evs));
	if (*evs)
		memcpy(*evs, s->log, s->nlog * sizeof(**evs));
	else
		r = -ENOMEM;
	pthread_mutex_unlock(&s->lock);
	return r;
}

const char *sched_event_name(enum sched_event_type t)
{
	static const char *const names[] = { "queued", "started", "progress",
					     "finished", "failed", "cancelled" };

	return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

void sched_free(struct sched *s)
{
	struct sched_job *j;

	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	for (j = s->head; j; j = j->next) {
		if (j->state == JOB_QUEUED) {
			j->state = JOB_DONE;
			s->queued--;
			sched_emit(s, j, SCHED_EV_CANCELLED, -ECANCELED, "scheduler shut down");
		} else if (j->state != JOB_DONE) {
			atomic_store(&j->cancel, true);
			j->cancel_asked = true;
		}
	}
	s->gen_req++;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	for (uint32_t i = 0; i < s->nds; i++)
		copier_limiter_free(s->ds[i].lim);
	free(s->ds);
	free(s->pending);
	free(s->log);
	pthread_cond_destroy(&s->wake);
	pthread_cond_destroy(&s->idle);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
