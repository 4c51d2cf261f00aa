/* loop_int.h - what the loop (loop.c) and its io_uring transport (ring.c) share.
 *
 * One struct loop_req per request buffer. Its first page holds the struct (and,
 * for a ring entry, the header the kernel fills); the data area starts at the
 * second page, LOOP_DATA_OFF: a /dev/fuse request is read to end its header
 * (fuse_in_header + fuse_write_in, 80 bytes) right there, and the kernel puts a
 * ring entry's payload there, so a WRITE's data is page-aligned either way and
 * goes to an O_DIRECT backing fd with no copy.
 */
#ifndef VDS_LOOP_INT_H
#define VDS_LOOP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/uio.h>

#include "iobuf.h"
#include "loop.h"
#include "uring_abi.h"

#define LOOP_DATA_OFF	4096u
/* A /dev/fuse read must fit the largest request: a WRITE of VDS_IO_MAX and its
 * header; a ring entry's payload must be at least max_write. */
#define LOOP_BUF_SIZE	(LOOP_DATA_OFF + VDS_IO_MAX + 4096u)
#define LOOP_RING_PAYLOAD	(VDS_IO_MAX + 4096u)

struct ring;
struct ring_worker;

struct loop_req {
	struct vds_loop *lp;
	struct ring_worker *w;	/* a ring entry: the worker whose ring it is on; NULL:
				 * a /dev/fuse buffer */
	struct loop_req *next;	/* the pool's free list (lp->pool_lock) */
	/* ring entries only: */
	uint64_t unique;	/* the request's commit id, saved before the reply
				 * overwrites the header */
	uint16_t qid;
	struct iovec iov[2];	/* header and payload, as registered */
	struct vds_fuse_uring_req_header hdr;
	_Alignas(16) char scratch[LOOP_REQ_SCRATCH];
};

/* Room in the first page, before the data, for a ring request's headers as one
 * contiguous request (ring.c), and for a /dev/fuse WRITE's header. */
#define LOOP_PREFIX_MAX	(sizeof(struct fuse_in_header) + 128)
_Static_assert(sizeof(struct loop_req) + LOOP_PREFIX_MAX <= LOOP_DATA_OFF,
	       "struct loop_req must leave room for a request's headers in its page");

static inline char *loop_req_buf(struct loop_req *r)
{
	return (char *)r + LOOP_DATA_OFF;
}

struct vds_loop {
	struct fuse_session *se;
	int fd;				/* /dev/fuse */
	int stop_fd;
	atomic_bool stopping;
	struct loop_conf conf;
	struct aio *aio;
	/* /dev/fuse buffers not in use; grows to the most requests ever kept at once */
	pthread_mutex_t pool_lock;
	struct loop_req *pool;
	/* Threads: one /dev/fuse worker from the start; after INIT, the rest of the
	 * /dev/fuse workers or the ring (threads_lock, against a concurrent stop). */
	pthread_mutex_t threads_lock;
	unsigned ndev;
	pthread_t *dev_tid;		/* conf.threads + 1 slots */
	struct ring *ring;		/* NULL: no ring */
	/* INIT, seen by the first worker before any other request exists */
	uint64_t init_unique;
	bool ring_claimed;		/* the INIT reply takes the kernel's ring */
};

/* loop.c */
struct loop_req *loop_req_alloc(struct vds_loop *lp);
void loop_req_free(struct loop_req *r);
void loop_signal_stop(struct vds_loop *lp);
/* Join a worker, waking it with SIGUSR1 until it has seen `stopping`. */
void loop_join_knocking(pthread_t tid);
/* Serve one request held in r (mem, len: where it is, contiguous). True if the
 * operation kept r (loop_req_keep): r may then already be done and reused, and the
 * caller must not touch it again. */
bool loop_dispatch(struct loop_req *r, void *mem, size_t len);
/* Start n more /dev/fuse workers (after INIT, or when the ring cannot be had). */
int loop_add_dev_workers(struct vds_loop *lp, unsigned n);

/* ring.c: FUSE over io_uring. prepare allocates everything (before the INIT reply
 * claims the ring, so that nothing is left to fail but the kernel's own
 * registration); start registers the entries and runs the workers. */
int ring_prepare(struct vds_loop *lp, struct ring **out);
int ring_start(struct ring *rg);
void ring_stop(struct ring *rg);
void ring_free(struct ring *rg);
/* The ring took the kernel's requests (its registration did not fail). */
bool ring_serving(struct ring *rg);
/* The reply to a request r took from the ring: into r's entry, and commit it. */
ssize_t ring_reply(struct loop_req *r, const struct iovec *iov, int count);

#endif
