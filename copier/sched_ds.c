/* sched_ds.c -- per-datastore accounting: the distinct-datastore rule.
 *
 * A datastore is busy for a job from the moment the job is picked until
 * sched_job_done(), whatever role it plays: the vSphere rule counts a
 * datastore used as source by one job and as destination by another as
 * shared. A job copying within one datastore counts it once. The table is
 * indexed by the caller's datastore id and grows on demand (ids below
 * SCHED_MAX_DS); each entry also owns that datastore's shared limiter.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sched_int.h"

static struct ds *ds_get(struct sched *s, uint32_t id)
{
	struct ds *n;
	uint32_t cap;

	if (id >= SCHED_MAX_DS)
		return NULL;
	if (id < s->nds)
		return &s->ds[id];
	cap = id + 16 < SCHED_MAX_DS ? id + 16 : SCHED_MAX_DS;
	n = realloc(s->ds, cap * sizeof(*n));
	if (!n)
		return NULL;
	memset(n + s->nds, 0, (cap - s->nds) * sizeof(*n));
	s->ds = n;
	s->nds = cap;
	return &s->ds[id];
}

static bool ds_free_for(struct sched *s, uint32_t id)
{
	struct ds *d = ds_get(s, id);

	return d && d->running < (d->limit ? d->limit : s->per_ds);
}

bool sched_can_start(struct sched *s, const struct sched_job *j)
{
	return s->running < s->max_running && ds_free_for(s, j->src) &&
	       (j->dst == j->src || ds_free_for(s, j->dst));
}

/* Both datastores exist: sched_can_start() allocated them. */
void sched_ds_count(struct sched *s, const struct sched_job *j, int delta)
{
	s->ds[j->src].running += (unsigned)delta;
	if (j->dst != j->src)
		s->ds[j->dst].running += (unsigned)delta;
	s->running += (unsigned)delta;
}

int sched_set_ds_limit(struct sched *s, uint32_t id, unsigned k)
{
	struct ds *d;

	pthread_mutex_lock(&s->lock);
	d = ds_get(s, id);
	if (d) {
		d->limit = k;
		s->gen_req++;  /* a raised limit may let queued jobs start */
		pthread_cond_signal(&s->wake);
	}
	pthread_mutex_unlock(&s->lock);
	return d ? 0 : -EINVAL;
}

int sched_set_max_running(struct sched *s, unsigned n)
{
	if (!n)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	s->max_running = n;
	s->gen_req++;  /* a raised limit may let queued jobs start */
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

struct copier_limiter *sched_ds_limiter(struct sched *s, uint32_t id)
{
	struct copier_limiter *lim = NULL;
	struct ds *d;

	pthread_mutex_lock(&s->lock);
	d = ds_get(s, id);
	if (d && !d->lim)
		d->lim = copier_limiter_new(0);
	if (d)
		lim = d->lim;
	pthread_mutex_unlock(&s->lock);
	return lim;
}

int sched_set_ds_rate(struct sched *s, uint32_t id, uint64_t bytes_per_sec)
{
	struct copier_limiter *lim = sched_ds_limiter(s, id);

	if (!lim)
		return -ENOMEM;
	copier_limiter_set_rate(lim, bytes_per_sec);
	return 0;
}
