/* loop.h - the FUSE request loop: workers receiving kernel requests, and the
 * requests' buffers.
 *
 * Requests come through one of two transports: read() on /dev/fuse, or the
 * kernel's io_uring queues (FUSE over io_uring, kernel 6.14+, when
 * /sys/module/fuse/parameters/enable_uring allows it). Either way each request
 * lives in a buffer of ours whose data area is page-aligned (loop.c), and an
 * operation may keep its request past its return and reply later from another
 * thread (the asynchronous backing I/O of ops_io.c, through aio.h).
 */
#ifndef VDS_LOOP_H
#define VDS_LOOP_H

#include <fuse_lowlevel.h>
#include <stdbool.h>

struct vds_loop;
struct loop_req;
struct aio;

enum loop_uring { LOOP_URING_AUTO, LOOP_URING_ON, LOOP_URING_OFF };

struct loop_conf {
	unsigned threads;	/* workers taking requests */
	enum loop_uring uring;	/* transport: FUSE over io_uring when offered (auto) */
	bool sync_io;		/* backing I/O by the workers themselves, no io_uring */
};

/* Before the mount: whether the kernel offers FUSE over io_uring to new mounts. */
bool loop_uring_offered(void);
/* Start serving the mounted session se (its replies then go through our hook);
 * the first worker to see the session end writes a byte to stop_fd. 0 or -errno;
 * on error *out is still set, for loop_free after the unmount. */
int loop_start(struct fuse_session *se, const struct loop_conf *conf, int stop_fd,
	       struct vds_loop **out);
/* Stop and join every thread (requests still in flight are answered first). */
void loop_stop(struct vds_loop *lp);
/* After the unmount: free what the kernel may have written into until then. */
void loop_free(struct vds_loop *lp);

/* --- for the operations ---------------------------------------------------------- */

#define LOOP_REQ_SCRATCH	256

/* The request this thread is serving (NULL outside a request). */
struct loop_req *loop_req_current(void);
/* r's data area: VDS_IO_MAX bytes, page-aligned. A READ's reply is read there
 * (and, on the ring, sent from there with no copy). */
void *loop_req_data(struct loop_req *r);
/* LOOP_REQ_SCRATCH bytes of r the operation may use while it keeps r. */
void *loop_req_scratch(struct loop_req *r);
/* The ring for r's backing I/O, and whether it is to be used (async_io=on). */
struct aio *loop_req_aio(struct loop_req *r);
bool loop_req_async(struct loop_req *r);
/* Keep r past the operation's return: its buffer (a WRITE's payload) stays as it
 * is, and the worker goes on with another. The reply then comes from any thread,
 * between loop_req_resume(r) and loop_req_done(r), which gives r back. */
void loop_req_keep(struct loop_req *r);
void loop_req_resume(struct loop_req *r);
void loop_req_done(struct loop_req *r);

#endif
