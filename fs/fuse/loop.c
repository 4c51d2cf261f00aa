/* loop.c - our own receive loop around fuse_session_process_buf().
 *
 * Why not fuse_session_loop_mt(): libfuse 3.14 reads each request into a malloc'd
 * buffer where a WRITE payload starts 80 bytes past a page boundary, so a backing fd
 * opened O_DIRECT rejects it (EINVAL) unless every write is copied; and it frees the
 * buffer when the operation returns, so a write cannot be completed asynchronously.
 * Here each request is read into a buffer of ours (loop_int.h) placed so that the
 * payload lands exactly on a page boundary, and an operation may keep the buffer
 * (loop_req_keep) until its backing I/O completes on the aio thread: the worker
 * takes a fresh buffer from the pool for its next read.
 *
 * Workers block in read() on the one session fd; replies for requests they keep
 * come from the aio completion thread. On unmount the kernel fails the read with
 * ENODEV; the first worker to see it tells main through stop_fd. To stop from our
 * side (SIGTERM), main calls loop_stop, which wakes workers with SIGUSR1, whose
 * handler does nothing but make read() return EINTR so they see `stopping`; then
 * the I/O still in flight is answered. Buffers are freed after the unmount
 * (loop_free).
 */
#include <errno.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aio.h"
#include "iobuf.h"
#include "loop_int.h"

#define WRITE_HDR	(sizeof(struct fuse_in_header) + sizeof(struct fuse_write_in))
#define AIO_DEPTH	256	/* SQ slots: taken only between a worker's prep and submit */

static __thread struct loop_req *tl_req;	/* the request this thread serves */
/* The operation this thread is dispatching kept its request. Thread-local, not a
 * field of the request: a kept request may complete and go back to the pool (or to
 * the kernel) on another thread before the dispatching worker looks again, so the
 * worker must decide from what it saw itself whether the buffer is still its own. */
static __thread bool tl_kept;

/* --- requests -------------------------------------------------------------------- */

struct loop_req *loop_req_current(void)
{
	return tl_req;
}

void *loop_req_data(struct loop_req *r)
{
	return loop_req_buf(r);
}

void *loop_req_scratch(struct loop_req *r)
{
	return r->scratch;
}

struct aio *loop_req_aio(struct loop_req *r)
{
	return r->lp->aio;
}

bool loop_req_async(struct loop_req *r)
{
	return !r->lp->conf.sync_io;
}

void loop_req_keep(struct loop_req *r)
{
	(void)r;
	tl_kept = true;
}

void loop_req_resume(struct loop_req *r)
{
	tl_req = r;
}

/* The buffer goes back to the pool. */
void loop_req_done(struct loop_req *r)
{
	struct vds_loop *lp = r->lp;

	tl_req = NULL;
	pthread_mutex_lock(&lp->pool_lock);
	r->next = lp->pool;
	lp->pool = r;
	pthread_mutex_unlock(&lp->pool_lock);
}

struct loop_req *loop_req_alloc(struct vds_loop *lp)
{
	struct loop_req *r = NULL;

	if (posix_memalign((void **)&r, VDS_IO_ALIGN, LOOP_BUF_SIZE))
		return NULL;
	memset(r, 0, sizeof(*r));
	r->lp = lp;
	return r;
}

void loop_req_free(struct loop_req *r)
{
	free(r);
}

static struct loop_req *pool_get(struct vds_loop *lp)
{
	struct loop_req *r;

	pthread_mutex_lock(&lp->pool_lock);
	r = lp->pool;
	if (r)
		lp->pool = r->next;
	pthread_mutex_unlock(&lp->pool_lock);
	return r ? r : loop_req_alloc(lp);
}

/* --- workers --------------------------------------------------------------------- */

static void wake_handler(int sig)
{
	(void)sig;
}

static void loop_signal_stop(struct vds_loop *lp)
{
	char c = 1;

	if (write(lp->stop_fd, &c, 1) < 0)
		return;	/* main is already leaving */
}

bool loop_dispatch(struct loop_req *r, void *mem, size_t len)
{
	struct fuse_buf buf = { .size = len, .mem = mem };
	bool kept;

	tl_kept = false;
	tl_req = r;
	fuse_session_process_buf(r->lp->se, &buf);
	tl_req = NULL;
	kept = tl_kept;
	tl_kept = false;
	return kept;
}

static void *dev_worker(void *arg)
{
	struct vds_loop *lp = arg;
	struct loop_req *r = NULL;

	while (!atomic_load(&lp->stopping)) {
		char *mem;
		ssize_t n;

		if (!r && !(r = pool_get(lp))) {
			fuse_log(FUSE_LOG_ERR, "vdsfs: out of memory for a request buffer\n");
			break;
		}
		mem = loop_req_buf(r) - WRITE_HDR;
		n = read(lp->fd, mem, LOOP_BUF_SIZE - (LOOP_DATA_OFF - WRITE_HDR));
		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == ENOENT))
			continue;
		if (n <= 0) {
			if (n < 0 && errno != ENODEV)
				fuse_log(FUSE_LOG_ERR, "vdsfs: reading /dev/fuse: %s\n", strerror(errno));
			break;
		}
		if (loop_dispatch(r, mem, (size_t)n))
			r = NULL;	/* no longer ours: loop_req_done gives it back */
		if (fuse_session_exited(lp->se))
			break;
	}
	if (r)
		loop_req_free(r);
	iobuf_put_thread();
	loop_signal_stop(lp);
	return NULL;
}

int loop_start(struct fuse_session *se, const struct loop_conf *conf, int stop_fd,
	       struct vds_loop **out)
{
	struct sigaction sa = { .sa_handler = wake_handler };	/* no SA_RESTART */
	struct vds_loop *lp = calloc(1, sizeof(*lp));
	int ret;

	if (!lp || !(lp->tid = calloc(conf->threads, sizeof(pthread_t)))) {
		free(lp);
		return -ENOMEM;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	lp->se = se;
	lp->fd = fuse_session_fd(se);
	lp->stop_fd = stop_fd;
	lp->conf = *conf;
	pthread_mutex_init(&lp->pool_lock, NULL);
	ret = aio_start(AIO_DEPTH, &lp->aio);
	for (; !ret && lp->n < conf->threads; lp->n++)
		ret = -pthread_create(&lp->tid[lp->n], NULL, dev_worker, lp);
	*out = lp;
	if (ret)
		loop_stop(lp);
	return ret;
}

static void write_test_stats(struct vds_loop *lp)
{
#ifdef VDS_TEST_HOOKS
	const char *path = getenv("VDSFS_TEST_IO_STATS");
	char tmp[4096];
	FILE *f;

	/* written aside and renamed: a test polling for the file reads all or nothing */
	if (!path || snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp) ||
	    !(f = fopen(tmp, "we")))
		return;
	fprintf(f, "transport dev\nmax_inflight %u\n", lp->aio ? aio_max_inflight(lp->aio) : 0);
	if (fclose(f) == 0)
		rename(tmp, path);
#else
	(void)lp;
#endif
}

/* A worker may be between its check and read() when the first signal lands, so keep
 * knocking until it has left. Then the I/O still in flight is answered. */
void loop_stop(struct vds_loop *lp)
{
	atomic_store(&lp->stopping, true);
	for (unsigned i = 0; i < lp->n; i++) {
		struct timespec ts;

		do {
			pthread_kill(lp->tid[i], SIGUSR1);
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 20 * 1000 * 1000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
		} while (pthread_timedjoin_np(lp->tid[i], NULL, &ts) == ETIMEDOUT);
	}
	write_test_stats(lp);
	if (lp->aio)
		aio_stop(lp->aio);
	lp->aio = NULL;
}

void loop_free(struct vds_loop *lp)
{
	while (lp->pool) {
		struct loop_req *r = lp->pool;

		lp->pool = r->next;
		loop_req_free(r);
	}
	pthread_mutex_destroy(&lp->pool_lock);
	free(lp->tid);
	free(lp);
}
