/* aio.h - backing reads and writes through io_uring, completed by their own thread.
 *
 * A FUSE worker hands a passthrough read or write to aio_submit and goes back to
 * the next kernel request; the completion thread calls the op's done() when the
 * backing file has answered, and done() replies to the kernel. So the number of
 * requests in flight on a backing file follows the guest's queue depth, not the
 * number of workers.
 */
#ifndef VDS_AIO_H
#define VDS_AIO_H

#include <stdbool.h>
#include <stddef.h>
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
};

/* The ring and its completion thread. depth: SQ entries. 0 or -errno. */
int aio_start(unsigned depth, struct aio **out);
/* Any thread: op->done will be called, with an error if the ring refused it. */
void aio_submit(struct aio *a, struct aio_op *op);
/* After the last submit: waits for every op to complete, then frees a. */
void aio_stop(struct aio *a);
/* A backing read or write that a worker does itself, synchronously: counted in
 * flight like the ring's ops (begin true before it, false after), so that the
 * maximum below covers both paths. */
void aio_count_sync(struct aio *a, bool begin);
/* The most ops ever in flight at once (submitted, done() not yet called), the
 * synchronous ones included. */
unsigned aio_max_inflight(struct aio *a);

#endif
