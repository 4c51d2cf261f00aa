/* sched_loop.c -- the scheduler thread: the only actor.
 *
 * Each pass takes a snapshot under the lock (finished jobs to free, running
 * jobs to cancel, queued jobs that may start now), then works outside the
 * lock in an order that keeps events ahead of the callbacks they announce:
 * prechecks (which decide between "started" and "failed"), event delivery,
 * cancel callbacks, releases, and finally run callbacks. gen_done records
 * what the pass has seen, which is what sched_sync() waits for.
 *
 * The FIFO scan in pick() is what makes the queue work-conserving: every
 * queued job whose datastores are free starts, in submission order, so a
 * job that waits for a busy datastore never holds up one that need not.
 */
#include <errno.h>
#include <stdlib.h>

#include "sched_int.h"

struct batch {
	struct sched_job **v;
	size_t n, cap;
};

/* Out of memory just postpones: callers leave the job as it was, and the
 * next pass (any event wakes one) tries again. */
static bool batch_add(struct batch *b, struct sched_job *j)
{
	struct sched_job **v;
	size_t cap;

	if (b->n == b->cap) {
		cap = b->cap ? b->cap * 2 : 16;
		v = realloc(b->v, cap * sizeof(*v));
		if (!v)
			return false;
		b->v = v;
		b->cap = cap;
	}
	b->v[b->n++] = j;
	return true;
}

/* Under lock: FIFO scan, start everything that fits (work-conserving). */
static void pick(struct sched *s, struct batch *start)
{
	struct sched_job *j;

	for (j = s->head; j && s->running < s->max_running; j = j->next) {
		if (j->state != JOB_QUEUED || !sched_can_start(s, j))
			continue;
		if (!batch_add(start, j))
			return;
		j->state = JOB_STARTING;
		s->queued--;
		sched_ds_count(s, j, +1);
	}
}

/* Under lock: unlink finished jobs (released later) and collect cancels. */
static void collect(struct sched *s, struct batch *done, struct batch *cancel)
{
	struct sched_job *j, *next;

	for (j = s->head; j; j = next) {
		next = j->next;
		if (j->cancel_asked && j->state == JOB_RUNNING && batch_add(cancel, j))
			j->cancel_asked = false;
		if (j->state != JOB_DONE || !batch_add(done, j))
			continue;
		if (j->prev)
			j->prev->next = j->next;
		else
			s->head = j->next;
		if (j->next)
			j->next->prev = j->prev;
		else
			s->tail = j->prev;
	}
}

static void run_prechecks(struct sched *s, struct batch *start)
{
	char msg[COPIER_MSG_LEN];
	struct sched_job *j;
	size_t i;
	int r;

	for (i = 0; i < start->n; i++) {
		j = start->v[i];
		msg[0] = 0;
		r = j->ops.precheck ? j->ops.precheck(j, msg, sizeof(msg)) : 0;
		pthread_mutex_lock(&s->lock);
		if (r || atomic_load(&j->cancel)) {  /* refused, or cancelled meanwhile */
			j->state = JOB_DONE;
			sched_ds_count(s, j, -1);
			if (r)
				sched_emit(s, j, SCHED_EV_FAILED, r < 0 ? r : -EIO, msg);
			else
				sched_emit(s, j, SCHED_EV_CANCELLED, -ECANCELED, "cancelled before start");
			start->v[i] = NULL;
		} else {
			j->state = JOB_RUNNING;
			sched_emit(s, j, SCHED_EV_STARTED, 0, NULL);
		}
		pthread_mutex_unlock(&s->lock);
	}
}

static void deliver(struct sched *s)
{
	struct sched_event *evs;
	size_t n, i;

	pthread_mutex_lock(&s->lock);
	evs = s->pending;
	n = s->npending;
	s->pending = NULL;
	s->npending = s->cap_pending = 0;
	pthread_mutex_unlock(&s->lock);
	for (i = 0; i < n && s->on_event; i++)
		s->on_event(s->event_arg, &evs[i]);
	free(evs);
}

/* One pass: everything outside the lock, in an order that keeps events
 * ahead of the callbacks they announce. */
static void sched_pass(struct sched *s, struct batch *start, struct batch *done,
		       struct batch *cancel)
{
	size_t i;

	run_prechecks(s, start);
	deliver(s);
	for (i = 0; i < cancel->n; i++)
		if (cancel->v[i]->ops.cancel)
			cancel->v[i]->ops.cancel(cancel->v[i]);
	for (i = 0; i < done->n; i++) {
		if (done->v[i]->ops.release)
			done->v[i]->ops.release(done->v[i]);
		free(done->v[i]);
	}
	for (i = 0; i < start->n; i++)
		if (start->v[i])
			start->v[i]->ops.run(start->v[i]);
}

void *sched_main(void *arg)
{
	struct batch start = { 0 }, done = { 0 }, cancel = { 0 };
	struct sched *s = arg;
	uint64_t gen;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (s->gen_done == s->gen_req && !(s->stop && sched_idle(s) && !s->head))
			pthread_cond_wait(&s->wake, &s->lock);
		if (s->stop && sched_idle(s) && !s->head)
			break;
		gen = s->gen_req;
		start.n = done.n = cancel.n = 0;
		collect(s, &done, &cancel);
		if (!s->stop)
			pick(s, &start);
		pthread_mutex_unlock(&s->lock);
		sched_pass(s, &start, &done, &cancel);
		pthread_mutex_lock(&s->lock);
		s->gen_done = gen;
		pthread_cond_broadcast(&s->idle);
	}
	pthread_mutex_unlock(&s->lock);
	free(start.v);
	free(done.v);
	free(cancel.v);
	return NULL;
}
