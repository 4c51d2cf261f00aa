/* aio.h - backing reads and writes through io_uring, replied on completion.
 *
 * A FUSE worker hands a passthrough read or write to io_uring and goes back to the
 * next kernel request; when the backing file has answered, the op's done() replies
 * to the kernel. So the number of requests in flight on a backing file follows the
 * guest's queue depth, not the number of workers.
 *
 * Two places run an op: the aio's own ring, reaped by its completion thread
 * (aio_submit: /dev/fuse workers), or a ring the caller reaps itself (aio_submit_on:
 * each FUSE-over-io_uring worker puts its backing I/O on the ring its kernel
 * requests come through, and completes it in the same loop, so the reply, and the
 * kernel's next request on that entry, stay on one thread). Either way the aio
 * counts what is in flight.
 */
#ifndef VDS_AIO_H
#define VDS_AIO_H

#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

struct aio;

struct aio_op {
	/* Called once, on the completion thread, with the bytes done or -errno. A
	 * write is all of len or an error (or short only where the file ended: see
	 * pwrite_all); a read is what one pread would have returned. done() must not
	 * block on anything a worker may hold. */
	void (*done)(struct aio_op *op, ssize_t res);
	int fd;
	bool write;
	void *buf;
	size_t len;
	off_t off;
	size_t moved;		/* bytes done so far (a write continued after a short one) */
	/* set by the submit: where the op runs (a short write goes on there) */
	struct aio *a;
	struct io_uring *ring;
	pthread_mutex_t *sq_lock;
};

struct io_uring;

/* An op's CQEs carry its address with this bit set, so that a ring shared with
 * other commands tells them apart (op structs are at least 2-aligned). */
#define AIO_TAG	1ull

/* The ring and its completion thread. depth: SQ entries. 0 or -errno. */
int aio_start(unsigned depth, struct aio **out);
/* Any thread: op->done will be called on the completion thread (or here, done
 * synchronously, if the ring cannot take it). */
void aio_submit(struct aio *a, struct aio_op *op);
/* The same on the caller's ring (sq_lock: its submission side), whose reaper hands
 * each CQE whose user_data has AIO_TAG to aio_complete: done() is called there. */
/* True if the op is on the ring (its CQE will come); false if it was done here. */
bool aio_submit_on(struct aio *a, struct io_uring *ring, pthread_mutex_t *sq_lock,
		   struct aio_op *op);
/* True if the op is over (done() called); false if it went on (a short write). */
bool aio_complete(uint64_t user_data, int res);
/* After the last submit: waits for every op to complete, then frees a. */
void aio_stop(struct aio *a);
/* A backing read or write that a worker does itself, synchronously: counted in
 * flight like the ring's ops (begin true before it, false after), so that the
 * maximum below covers both paths. */
void aio_count_sync(struct aio *a, bool begin);
/* Ops in flight now. */
unsigned aio_inflight(struct aio *a);
/* TEST-ONLY (aio.c): the VDSFS_TEST_AIO_GATHER count, 0 when unset or in a
 * production build. A reaper holds its first completions until that many ops
 * are in flight (at most 10 s). */
unsigned aio_test_gather(void);
/* The most ops ever in flight at once (submitted, done() not yet called), the
 * synchronous ones included. */
unsigned aio_max_inflight(struct aio *a);

#endif
