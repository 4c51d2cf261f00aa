/* loop_int.h - the loop's request buffers.
 *
 * One struct loop_req per request buffer. Its first page holds the struct; the
 * data area starts at the second page, LOOP_DATA_OFF: a /dev/fuse request is read
 * to end its header (fuse_in_header + fuse_write_in, 80 bytes) right there, so a
 * WRITE's data is page-aligned and goes to an O_DIRECT backing fd with no copy.
 */
#ifndef VDS_LOOP_INT_H
#define VDS_LOOP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/uio.h>

#include "iobuf.h"
#include "loop.h"

#define LOOP_DATA_OFF	4096u
/* A /dev/fuse read must fit the largest request: a WRITE of VDS_IO_MAX and its
 * header. */
#define LOOP_BUF_SIZE	(LOOP_DATA_OFF + VDS_IO_MAX + 4096u)

struct loop_req {
	struct vds_loop *lp;
	struct loop_req *next;	/* the pool's free list (lp->pool_lock) */
	_Alignas(16) char scratch[LOOP_REQ_SCRATCH];
};

/* Room in the first page, before the data, for a /dev/fuse WRITE's header. */
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
	pthread_t *tid;			/* conf.threads slots */
	unsigned n;
};

/* loop.c */
struct loop_req *loop_req_alloc(struct vds_loop *lp);
void loop_req_free(struct loop_req *r);
/* Serve one request held in r (mem, len: where it is, contiguous). True if the
 * operation kept r (loop_req_keep): r may then already be done and reused, and the
 * caller must not touch it again. */
bool loop_dispatch(struct loop_req *r, void *mem, size_t len);

#endif
