/* aio.c - backing reads and writes through one io_uring, one completion thread.
 *
 * Submission is shared: any worker takes sq_lock, fills one SQE and submits it, so
 * the ring's submission side has one writer at a time. Completion is not: only the
 * completion thread reaps, with no lock, and calls each op's done(). A write that
 * came back short is continued from where it stopped (pwrite_all's contract); a
 * read is returned as pread would have returned it. An op the ring has no room for,
 * or that comes back EAGAIN (an fd opened O_NONBLOCK), is done synchronously here
 * instead, so every op completes exactly once.
 *
 * Stopping: after the last submit, a NOP with no op marks the end; the thread
 * leaves once it has seen it and nothing is in flight.
 *
 * TEST-ONLY (test builds): VDSFS_TEST_AIO_GATHER=N makes the completion thread,
 * once, hold its first completion until N ops are in flight (at most 10 s),
 * so that a test can tell by the count alone whether more I/O is in flight than
 * there are workers: with synchronous I/O the count could never reach N and the
 * maximum stays at the number of workers, however fast the backing disk.
 */
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "aio.h"
#include "kernel_hb.h"
#include "paths.h"

struct aio {
	struct io_uring ring;
	pthread_mutex_t sq_lock;	/* the ring's submission side */
	pthread_t tid;
	atomic_uint inflight;		/* submitted, done() not yet called */
	atomic_uint max_inflight;
};

static void note_start(struct aio *a)
{
	unsigned n = atomic_fetch_add(&a->inflight, 1) + 1;
	unsigned max = atomic_load(&a->max_inflight);

	while (n > max && !atomic_compare_exchange_weak(&a->max_inflight, &max, n))
		;
}

static void finish(struct aio *a, struct aio_op *op, ssize_t res)
{
	atomic_fetch_sub(&a->inflight, 1);
	op->done(op, res);
}

/* The op's remaining bytes, the slow way (the ring could not take it). */
static ssize_t run_sync(struct aio_op *op)
{
	char *buf = (char *)op->buf + op->moved;
	off_t off = op->off + (off_t)op->moved;
	ssize_t n;

	if (op->write) {
		n = pwrite_all(op->fd, buf, op->len - op->moved, off);
		return n < 0 ? (op->moved ? (ssize_t)op->moved : n) : (ssize_t)op->moved + n;
	}
	n = pread(op->fd, buf, op->len, op->off);
	return n < 0 ? -errno : n;
}

/* With sq_lock held. */
static int queue_op(struct aio *a, struct aio_op *op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&a->ring);
	char *buf = (char *)op->buf + op->moved;
	unsigned len = (unsigned)(op->len - op->moved);
	off_t off = op->off + (off_t)op->moved;
	int ret;

	if (!sqe) {	/* full of unsubmitted SQEs: only if a submit failed */
		io_uring_submit(&a->ring);
		if (!(sqe = io_uring_get_sqe(&a->ring)))
			return -EBUSY;
	}
	if (op->write)
		io_uring_prep_write(sqe, op->fd, buf, len, off);
	else
		io_uring_prep_read(sqe, op->fd, buf, len, off);
	io_uring_sqe_set_data(sqe, op);
	handed_to_kernel(op);	/* the submitter touches op no more */
	/* A failed enter leaves the SQE queued for the next one, so it must not be
	 * done another way: retry what is transient (the completion thread drains
	 * the CQ without this lock). */
	while ((ret = io_uring_submit(&a->ring)) == -EINTR || ret == -EAGAIN || ret == -EBUSY)
		sched_yield();
	return 0;
}

void aio_submit(struct aio *a, struct aio_op *op)
{
	int ret;

	note_start(a);
	pthread_mutex_lock(&a->sq_lock);
	ret = queue_op(a, op);
	pthread_mutex_unlock(&a->sq_lock);
	if (ret)
		finish(a, op, run_sync(op));
}

/* A write that stopped short goes on from there, as pwrite_all would. */
static void complete(struct aio *a, struct aio_op *op, int res)
{
	int ret;

	if (res == -EAGAIN) {
		finish(a, op, run_sync(op));
		return;
	}
	if (!op->write || res <= 0) {
		finish(a, op, op->moved ? (ssize_t)op->moved : res);
		return;
	}
	op->moved += (size_t)res;
	if (op->moved == op->len) {
		finish(a, op, (ssize_t)op->len);
		return;
	}
	pthread_mutex_lock(&a->sq_lock);
	ret = queue_op(a, op);
	pthread_mutex_unlock(&a->sq_lock);
	if (ret)
		finish(a, op, run_sync(op));
}

static void test_gather(struct aio *a)
{
#ifdef VDS_TEST_HOOKS
	const char *env = getenv("VDSFS_TEST_AIO_GATHER");
	unsigned n = env ? (unsigned)strtoul(env, NULL, 10) : 0;
	struct timespec ms = { 0, 1000 * 1000 };

	for (int i = 0; n && i < 10000 && atomic_load(&a->inflight) < n; i++)
		nanosleep(&ms, NULL);
#else
	(void)a;
#endif
}

static void *completer(void *arg)
{
	struct aio *a = arg;
	bool ending = false, gathered = false;

	while (!ending || atomic_load(&a->inflight)) {
		struct io_uring_cqe *cqe;
		struct aio_op *op;
		int res, ret = io_uring_wait_cqe(&a->ring, &cqe);

		if (ret == -EINTR)
			continue;
		if (ret < 0)
			break;	/* cannot happen with a live ring */
		op = io_uring_cqe_get_data(cqe);
		if (op)
			back_from_kernel(op);
		if (op && !gathered) {
			test_gather(a);
			gathered = true;
		}
		res = cqe->res;
		io_uring_cqe_seen(&a->ring, cqe);
		if (op)
			complete(a, op, res);
		else
			ending = true;
	}
	return NULL;
}

int aio_start(unsigned depth, struct aio **out)
{
	struct aio *a = calloc(1, sizeof(*a));
	int ret;

	if (!a)
		return -ENOMEM;
	ret = io_uring_queue_init(depth, &a->ring, 0);
	if (ret) {
		free(a);
		return ret;
	}
	pthread_mutex_init(&a->sq_lock, NULL);
	ret = -pthread_create(&a->tid, NULL, completer, a);
	if (ret) {
		io_uring_queue_exit(&a->ring);
		pthread_mutex_destroy(&a->sq_lock);
		free(a);
		return ret;
	}
	*out = a;
	return 0;
}

void aio_stop(struct aio *a)
{
	struct io_uring_sqe *sqe;

	pthread_mutex_lock(&a->sq_lock);
	while (!(sqe = io_uring_get_sqe(&a->ring)))
		io_uring_submit(&a->ring);
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data(sqe, NULL);
	io_uring_submit(&a->ring);
	pthread_mutex_unlock(&a->sq_lock);
	pthread_join(a->tid, NULL);
	io_uring_queue_exit(&a->ring);
	pthread_mutex_destroy(&a->sq_lock);
	free(a);
}

void aio_count_sync(struct aio *a, bool begin)
{
	if (begin)
		note_start(a);
	else
		atomic_fetch_sub(&a->inflight, 1);
}

unsigned aio_max_inflight(struct aio *a)
{
	return atomic_load(&a->max_inflight);
}
