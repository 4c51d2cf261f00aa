/* limiter.c -- token-bucket rate limiter shared between copies.
 *
 * A limiter holds "tokens" (bytes) that refill at rate bytes/s up to a burst
 * of a tenth of a second (at least 1 MiB), so an idle limiter cannot save up
 * a long burst. Copies reserve bytes before they issue a read; the bucket
 * may go into debt, and the reservation returns how long the caller must
 * pause until the debt is paid. Debt instead of blocking lets one copy charge
 * several limiters (its own, its source's and its destination's datastore)
 * without lock ordering, and keeps the long-run rate of every limiter exact
 * while parallel copies share it fairly by arrival.
 */
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"

struct copier_limiter {
	pthread_mutex_t lock;  /* guards every field below */
	uint64_t rate;         /* bytes/s; 0 = unlimited */
	double tokens;         /* may be negative: debt */
	uint64_t last_ns;      /* time tokens was last refilled */
};

static double limiter_burst(uint64_t rate)
{
	double b = (double)rate / 10.0;

	return b < 1048576.0 ? 1048576.0 : b;
}

struct copier_limiter *copier_limiter_new(uint64_t bytes_per_sec)
{
	struct copier_limiter *lim = calloc(1, sizeof(*lim));

	if (!lim)
		return NULL;
	pthread_mutex_init(&lim->lock, NULL);
	lim->rate = bytes_per_sec;
	lim->last_ns = copier_now_ns();
	return lim;
}

void copier_limiter_set_rate(struct copier_limiter *lim, uint64_t bytes_per_sec)
{
	pthread_mutex_lock(&lim->lock);
	__atomic_store_n(&lim->rate, bytes_per_sec, __ATOMIC_RELAXED);  /* see _rate() */
	lim->tokens = 0;
	lim->last_ns = copier_now_ns();
	pthread_mutex_unlock(&lim->lock);
}

uint64_t copier_limiter_rate(const struct copier_limiter *lim)
{
	/* lock-free read for display; writers store atomically under the lock */
	return __atomic_load_n(&lim->rate, __ATOMIC_RELAXED);
}

void copier_limiter_free(struct copier_limiter *lim)
{
	if (!lim)
		return;
	pthread_mutex_destroy(&lim->lock);
	free(lim);
}

uint64_t limiter_reserve_at(struct copier_limiter *lim, uint64_t n, uint64_t now)
{
	uint64_t wait = 0;
	double burst;

	pthread_mutex_lock(&lim->lock);
	if (lim->rate) {
		burst = limiter_burst(lim->rate);
		if (now > lim->last_ns) {
			lim->tokens += (double)(now - lim->last_ns) * (double)lim->rate / 1e9;
			lim->last_ns = now;
		}
		if (lim->tokens > burst)
			lim->tokens = burst;
		lim->tokens -= (double)n;
		if (lim->tokens < 0)
			wait = (uint64_t)(-lim->tokens * 1e9 / (double)lim->rate);
	}
	pthread_mutex_unlock(&lim->lock);
	return wait;
}
