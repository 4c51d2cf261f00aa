/* loop.c - our own multi-threaded receive loop around fuse_session_process_buf().
 *
 * Why not fuse_session_loop_mt(): libfuse 3.14 reads each request into a malloc'd
 * buffer where a WRITE payload starts 80 bytes past a page boundary, so a backing fd
 * opened O_DIRECT rejects it (EINVAL) unless every write is copied. Here each worker
 * reads into a buffer placed so that the payload (after struct fuse_in_header and
 * struct fuse_write_in, 80 bytes) lands exactly on a page boundary: direct writes go
 * from the request buffer to the backing file with no copy.
 *
 * Workers block in read() on the one session fd. On unmount the kernel fails the
 * read with ENODEV; the first worker to see it tells main through stop_fd. To stop
 * from our side (SIGTERM), main unmounts and then wakes workers with SIGUSR1, whose
 * handler does nothing but make read() return EINTR so they see `stopping`.
 */
#include <errno.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "iobuf.h"
#include "loop.h"

#define WRITE_HDR	(sizeof(struct fuse_in_header) + sizeof(struct fuse_write_in))
#define REQ_BUF		(VDS_IO_MAX + 4096)

struct vds_loop {
	struct fuse_session *se;
	int stop_fd;
	atomic_bool stopping;
	unsigned n;
	pthread_t tid[];
};

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

static void *worker(void *arg)
{
	struct vds_loop *lp = arg;
	int fd = fuse_session_fd(lp->se);
	char *raw = aligned_alloc(4096, REQ_BUF + 4096);
	char *mem = raw + 4096 - WRITE_HDR;

	while (raw && !atomic_load(&lp->stopping)) {
		ssize_t n = read(fd, mem, REQ_BUF);

		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == ENOENT))
			continue;
		if (n <= 0) {
			if (n < 0 && errno != ENODEV)
				fuse_log(FUSE_LOG_ERR, "vdsfs: reading /dev/fuse: %s\n", strerror(errno));
			break;
		}
		struct fuse_buf buf = { .size = (size_t)n, .mem = mem };
		fuse_session_process_buf(lp->se, &buf);
		if (fuse_session_exited(lp->se))
			break;
	}
	free(raw);
	iobuf_put_thread();
	loop_signal_stop(lp);
	return NULL;
}

int loop_start(struct fuse_session *se, unsigned threads, int stop_fd, struct vds_loop **out)
{
	struct sigaction sa = { .sa_handler = wake_handler };	/* no SA_RESTART */
	struct vds_loop *lp = calloc(1, sizeof(*lp) + threads * sizeof(pthread_t));
	int ret;

	if (!lp)
		return -ENOMEM;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	lp->se = se;
	lp->stop_fd = stop_fd;
	for (lp->n = 0; lp->n < threads; lp->n++) {
		ret = pthread_create(&lp->tid[lp->n], NULL, worker, lp);
		if (ret) {
			loop_stop(lp);
			return -ret;
		}
	}
	*out = lp;
	return 0;
}

void loop_stop(struct vds_loop *lp)
{
	atomic_store(&lp->stopping, true);
	/* A worker may be between its check and read() when the first signal lands,
	 * so keep knocking until it has left. */
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
	free(lp);
}
