/* loop.c - our own receive loop around fuse_session_process_buf(), and the reply
 * path under it.
 *
 * Why not fuse_session_loop_mt(): libfuse 3.14 reads each request into a malloc'd
 * buffer where a WRITE payload starts 80 bytes past a page boundary, so a backing fd
 * opened O_DIRECT rejects it (EINVAL) unless every write is copied; and it frees the
 * buffer when the operation returns, so a write cannot be completed asynchronously.
 * Here each request is read into a buffer of ours (loop_int.h) placed so that the
 * payload lands exactly on a page boundary, and an operation may keep the buffer
 * (loop_req_keep) until its backing I/O completes on the aio thread: the worker
 * takes a fresh buffer from the pool for its next read. The same layout serves the
 * io_uring transport (ring.c), which libfuse 3.14 does not know: the session's
 * writev hook (loop_attach) sends each reply where its request came from.
 *
 * Threads. One /dev/fuse worker starts first and reads INIT. If the kernel offers
 * FUSE over io_uring and it is wanted, the ring is prepared before the INIT reply,
 * the reply claims it, and the ring's workers start; the /dev/fuse worker stays for
 * what the kernel still sends there (FORGET, INTERRUPT). Otherwise the other
 * threads-1 /dev/fuse workers start. Workers block in read() on the one session
 * fd; replies for requests they keep come from the aio completion thread.
 *
 * Stopping. On unmount the kernel fails the read with ENODEV (and the ring's
 * commands with ENOTCONN); the first worker to see it tells main through stop_fd.
 * To stop from our side (SIGTERM), main calls loop_stop, which wakes workers with
 * SIGUSR1, whose handler does nothing but make read() or io_uring_enter() return
 * EINTR so they see `stopping`; then the I/O still in flight is answered. Buffers
 * the kernel may write into are freed only after the unmount (loop_free).
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
#include <sys/uio.h>
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
static struct vds_loop *the_loop;		/* for the writev hook: one loop a process */

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

/* A ring entry is the kernel's again the moment its reply is committed: nothing of
 * it may be touched after. A /dev/fuse buffer goes back to the pool. */
void loop_req_done(struct loop_req *r)
{
	struct vds_loop *lp = r->lp;

	tl_req = NULL;
	if (r->w)
		return;
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

/* --- the reply path ------------------------------------------------------------- */

/* The INIT reply claims the kernel's ring when ring_prepare succeeded: a kernel
 * that saw FUSE_OVER_IO_URING keeps taking ring commands for this connection
 * even if enable_uring is switched off later. */
static void claim_ring(struct iovec *iov, int count)
{
	struct fuse_init_out *o = count > 1 ? iov[1].iov_base : NULL;

	if (!o || iov[1].iov_len < offsetof(struct fuse_init_out, flags2) + sizeof(o->flags2))
		return;
	o->flags |= FUSE_INIT_EXT;
	o->flags2 |= (uint32_t)(VDS_FUSE_OVER_IO_URING >> 32);
}

/* Every reply libfuse sends comes here, from whichever thread replies. A reply to
 * the request this thread serves from the ring goes into its entry; all else
 * (replies to /dev/fuse requests, an EAGAIN to an INTERRUPT sent while serving
 * another request) is written to /dev/fuse. */
static ssize_t hook_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct fuse_out_header *out = iov[0].iov_base;
	struct loop_req *r = tl_req;
	struct vds_loop *lp = the_loop;

	(void)userdata;
	if (r && r->w && out->unique == r->unique)
		return ring_reply(r, iov, count);
	if (lp && lp->ring_claimed && out->unique == lp->init_unique && out->unique)
		claim_ring(iov, count);
	return writev(fd, iov, count);
}

static ssize_t hook_read(int fd, void *buf, size_t len, void *userdata)
{
	(void)userdata;
	return read(fd, buf, len);	/* unused: the loop reads by itself */
}

static int attach(struct fuse_session *se)
{
	static const struct fuse_custom_io io = { .writev = hook_writev, .read = hook_read };
	int fd = fuse_session_fd(se);

	return fd < 0 ? -EBADF : fuse_session_custom_io(se, &io, fd);
}

/* --- workers --------------------------------------------------------------------- */

static void wake_handler(int sig)
{
	(void)sig;
}

void loop_signal_stop(struct vds_loop *lp)
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

/* INIT arrives before any other request, on the first worker: decide the transport
 * and prepare the ring, so that the reply can claim it. */
static void before_init(struct vds_loop *lp, const struct fuse_in_header *in, size_t len)
{
	const struct fuse_init_in *ii = (const void *)(in + 1);
	bool offered = len >= sizeof(*in) + offsetof(struct fuse_init_in, unused) &&
		       (ii->flags & FUSE_INIT_EXT) &&
		       (ii->flags2 & (uint32_t)(VDS_FUSE_OVER_IO_URING >> 32));
	int ret;

	lp->init_unique = in->unique;
	if (lp->conf.uring == LOOP_URING_OFF)
		return;
	if (!offered) {
		if (lp->conf.uring == LOOP_URING_ON)
			fuse_log(FUSE_LOG_ERR, "vdsfs: io_uring=on, but the kernel did not offer FUSE over io_uring; serving /dev/fuse\n");
		return;
	}
	ret = ring_prepare(lp, &lp->ring);
	if (ret) {
		fuse_log(FUSE_LOG_ERR, "vdsfs: FUSE over io_uring: %s; serving /dev/fuse\n",
			 strerror(-ret));
		return;
	}
	lp->ring_claimed = true;
}

/* After the INIT reply: the kernel is initialized, the other threads may start. */
static void after_init(struct vds_loop *lp)
{
	int ret = 0;

	pthread_mutex_lock(&lp->threads_lock);
	if (atomic_load(&lp->stopping))
		goto out;
	if (lp->ring_claimed)
		ret = ring_start(lp->ring);
	else if (lp->conf.threads > 1)
		ret = loop_add_dev_workers(lp, lp->conf.threads - 1);
	if (ret)
		fuse_log(FUSE_LOG_ERR, "vdsfs: cannot start workers: %s\n", strerror(-ret));
out:
	pthread_mutex_unlock(&lp->threads_lock);
}

static void *dev_worker(void *arg)
{
	struct vds_loop *lp = arg;
	struct loop_req *r = NULL;

	while (!atomic_load(&lp->stopping)) {
		char *mem;
		ssize_t n;
		bool init;

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
		init = (size_t)n >= sizeof(struct fuse_in_header) &&
		       ((struct fuse_in_header *)mem)->opcode == FUSE_INIT;
		if (init)
			before_init(lp, (struct fuse_in_header *)mem, (size_t)n);
		if (loop_dispatch(r, mem, (size_t)n))
			r = NULL;	/* no longer ours: loop_req_done gives it back */
		if (init)
			after_init(lp);
		if (fuse_session_exited(lp->se))
			break;
	}
	if (r)
		loop_req_free(r);
	iobuf_put_thread();
	loop_signal_stop(lp);
	return NULL;
}

/* With threads_lock held (or before any other thread runs). */
int loop_add_dev_workers(struct vds_loop *lp, unsigned n)
{
	for (unsigned i = 0; i < n && lp->ndev <= lp->conf.threads; i++) {
		int ret = pthread_create(&lp->dev_tid[lp->ndev], NULL, dev_worker, lp);

		if (ret)
			return -ret;
		lp->ndev++;
	}
	return 0;
}

bool loop_uring_offered(void)
{
	FILE *f = fopen("/sys/module/fuse/parameters/enable_uring", "re");
	int c = f ? fgetc(f) : EOF;

	if (f)
		fclose(f);
	return c == 'Y' || c == '1';
}

int loop_start(struct fuse_session *se, const struct loop_conf *conf, int stop_fd,
	       struct vds_loop **out)
{
	struct sigaction sa = { .sa_handler = wake_handler };	/* no SA_RESTART */
	struct vds_loop *lp = calloc(1, sizeof(*lp));
	int ret;

	if (!lp || !(lp->dev_tid = calloc(conf->threads + 1, sizeof(pthread_t)))) {
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
	pthread_mutex_init(&lp->threads_lock, NULL);
	the_loop = lp;
	ret = attach(se);
	if (!ret)
		ret = aio_start(AIO_DEPTH, &lp->aio);
	if (!ret) {
		pthread_mutex_lock(&lp->threads_lock);
		ret = loop_add_dev_workers(lp, 1);
		pthread_mutex_unlock(&lp->threads_lock);
	}
	*out = lp;
	if (ret)
		loop_stop(lp);
	return ret;
}

/* A worker may be between its check and its wait when the first signal lands, so
 * keep knocking until it has left. */
void loop_join_knocking(pthread_t tid)
{
	struct timespec ts;

	do {
		pthread_kill(tid, SIGUSR1);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
	} while (pthread_timedjoin_np(tid, NULL, &ts) == ETIMEDOUT);
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
	fprintf(f, "transport %s\nmax_inflight %u\n",
		lp->ring && ring_serving(lp->ring) ? "io_uring" : "dev",
		lp->aio ? aio_max_inflight(lp->aio) : 0);
	if (fclose(f) == 0)
		rename(tmp, path);
#else
	(void)lp;
#endif
}

void loop_stop(struct vds_loop *lp)
{
	atomic_store(&lp->stopping, true);
	pthread_mutex_lock(&lp->threads_lock);	/* no thread starts after this */
	pthread_mutex_unlock(&lp->threads_lock);
	for (unsigned i = 0; i < lp->ndev; i++)
		loop_join_knocking(lp->dev_tid[i]);
	if (lp->ring)
		ring_stop(lp->ring);
	write_test_stats(lp);
	if (lp->aio)
		aio_stop(lp->aio);
	lp->aio = NULL;
}

void loop_free(struct vds_loop *lp)
{
	if (lp->ring)
		ring_free(lp->ring);
	while (lp->pool) {
		struct loop_req *r = lp->pool;

		lp->pool = r->next;
		loop_req_free(r);
	}
	pthread_mutex_destroy(&lp->pool_lock);
	pthread_mutex_destroy(&lp->threads_lock);
	free(lp->dev_tid);
	if (the_loop == lp)
		the_loop = NULL;
	free(lp);
}
