/* ring.c - FUSE over io_uring: kernel requests through io_uring commands.
 *
 * The kernel keeps one queue per possible CPU and hands a request to a free entry
 * of the queue of the CPU it was issued on; the ring is ready (and /dev/fuse gets
 * only FORGET and INTERRUPT) once every queue has an entry. An entry is two
 * buffers of ours, registered once: the header (struct
 * vds_fuse_uring_req_header: the request's fuse_in_header and first argument) and
 * the payload, the second page of a struct loop_req on (loop_int.h). A request
 * arrives as the completion of the entry's last command; its reply goes into the
 * same buffers and is committed with COMMIT_AND_FETCH, which also makes the entry
 * free for the next request.
 *
 * libfuse 3.14 parses only contiguous requests: the header and first argument are
 * copied in front of the payload, into the end of the entry's first page, so the
 * payload itself (a WRITE's data) stays where the kernel put it, page-aligned.
 * A READ's data is read straight into the payload and replied from there.
 *
 * Threads: `threads` workers, each with its own io_uring (128-byte SQEs, for the
 * command block) holding an even share of every queue's entries, so that a worker
 * busy with a slow request leaves the others' entries free. A reply may come from
 * another thread (the aio completion thread): each ring's submission side has its
 * own lock, taken by whoever commits.
 *
 * Depth: RING_QUEUE_DEPTH entries per queue bound the requests one CPU can have in
 * the daemon at once (requests beyond wait in the kernel's queue); each costs a
 * request buffer (loop_int.h), touched only as far as requests fill it.
 */
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop_int.h"
#include "kernel_hb.h"

#define RING_QUEUE_DEPTH	32

struct ring_worker {
	struct ring *rg;
	pthread_t tid;
	bool running;
	struct io_uring uring;
	bool uring_ok;
	pthread_mutex_t sq_lock;	/* the submission side of uring */
	unsigned nent;
	struct loop_req **ent;
};

struct ring {
	struct vds_loop *lp;
	unsigned nqueues;
	unsigned nworkers;
	atomic_bool fell_back;		/* registration failed: /dev/fuse workers run */
	atomic_bool warned;
	struct ring_worker w[];
};

/* The kernel's queues: num_possible_cpus(), counted from the possible mask. */
static int possible_cpus(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/possible", "re");
	unsigned a, b, n = 0;
	int c;

	if (!f)
		return -errno;
	while (fscanf(f, "%u", &a) == 1) {
		b = a;
		c = fgetc(f);
		if (c == '-') {
			if (fscanf(f, "%u", &b) != 1 || b < a)
				break;
			c = fgetc(f);
		}
		n += b - a + 1;
		if (c != ',')
			break;
	}
	fclose(f);
	return n ? (int)n : -EINVAL;
}

static void prep_cmd(struct io_uring_sqe *sqe, struct loop_req *r, unsigned op)
{
	struct vds_fuse_uring_cmd_req *cmd = (void *)sqe->cmd;

	memset(sqe, 0, 2 * sizeof(*sqe));	/* a 128-byte SQE */
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = r->lp->fd;
	sqe->cmd_op = op;
	sqe->user_data = (uintptr_t)r;
	if (op == VDS_FUSE_URING_CMD_REGISTER) {
		sqe->addr = (uintptr_t)r->iov;
		sqe->len = 2;
	} else {
		cmd->commit_id = r->unique;
	}
	cmd->qid = r->qid;
}

/* Queue op for r on its worker's ring and submit it; with sq_lock held. */
static void submit_cmd_locked(struct ring_worker *w, struct loop_req *r, unsigned op)
{
	struct io_uring_sqe *sqe;
	int ret;

	/* There is one SQ slot per entry and an entry has one command at a time, so
	 * a slot is always free once earlier ones were submitted. */
	while (!(sqe = io_uring_get_sqe(&w->uring)))
		io_uring_submit(&w->uring);
	prep_cmd(sqe, r, op);
	handed_to_kernel(r);	/* the reply in r is the kernel's now */
	while ((ret = io_uring_submit(&w->uring)) == -EINTR || ret == -EAGAIN || ret == -EBUSY)
		sched_yield();
}

static void submit_cmd(struct loop_req *r, unsigned op)
{
	struct ring_worker *w = r->w;

	pthread_mutex_lock(&w->sq_lock);
	submit_cmd_locked(w, r, op);
	pthread_mutex_unlock(&w->sq_lock);
}

ssize_t ring_reply(struct loop_req *r, const struct iovec *iov, int count)
{
	struct fuse_out_header out = *(const struct fuse_out_header *)iov[0].iov_base;
	char *payload = loop_req_buf(r);
	size_t n = 0;

	for (int i = 1; i < count; i++) {
		if (n + iov[i].iov_len > LOOP_RING_PAYLOAD) {
			out.error = -EIO;	/* cannot be: replies are at most max_read */
			n = 0;
			break;
		}
		if (iov[i].iov_base != payload + n)
			memmove(payload + n, iov[i].iov_base, iov[i].iov_len);
		n += iov[i].iov_len;
	}
	out.len = (uint32_t)(sizeof(out) + n);
	memcpy(r->hdr.in_out, &out, sizeof(out));
	r->hdr.ring_ent_in_out.payload_sz = (uint32_t)n;
	submit_cmd(r, VDS_FUSE_URING_CMD_COMMIT_AND_FETCH);
	return (ssize_t)out.len;
}

/* Answer a request we cannot parse, so that its entry comes back. */
static void reply_error(struct loop_req *r, int err)
{
	struct fuse_out_header out = { .error = -err, .unique = r->unique };
	struct iovec iov = { &out, sizeof(out) };

	ring_reply(r, &iov, 1);
}

/* A request arrived in r: lay it out as libfuse wants it, and serve it. */
static void serve(struct loop_req *r)
{
	struct fuse_in_header in;
	uint32_t psz = r->hdr.ring_ent_in_out.payload_sz;
	size_t oplen;
	char *mem;

	memcpy(&in, r->hdr.in_out, sizeof(in));
	r->unique = r->hdr.ring_ent_in_out.commit_id;
	if (in.len < sizeof(in) + psz || psz > LOOP_RING_PAYLOAD ||
	    (oplen = in.len - sizeof(in) - psz) > sizeof(r->hdr.op_in)) {
		fuse_log(FUSE_LOG_ERR, "vdsfs: FUSE over io_uring: malformed request (opcode %u, %u bytes)\n",
			 in.opcode, in.len);
		reply_error(r, EIO);
		return;
	}
	mem = loop_req_buf(r) - sizeof(in) - oplen;
	memcpy(mem, &in, sizeof(in));
	memcpy(mem + sizeof(in), r->hdr.op_in, oplen);
	loop_dispatch(r, mem, in.len);
}

/* The kernel refused an entry: it now sends requests through /dev/fuse again
 * (it clears its io_uring flag), so the /dev/fuse workers the ring replaced start. */
static void fall_back(struct ring *rg, int err)
{
	struct vds_loop *lp = rg->lp;

	if (atomic_exchange(&rg->fell_back, true))
		return;
	fuse_log(FUSE_LOG_ERR, "vdsfs: FUSE over io_uring: registering a queue entry: %s; serving /dev/fuse\n",
		 strerror(-err));
	pthread_mutex_lock(&lp->threads_lock);
	if (!atomic_load(&lp->stopping) && lp->conf.threads > 1)
		loop_add_dev_workers(lp, lp->conf.threads - 1);
	pthread_mutex_unlock(&lp->threads_lock);
}

/* One completion: a request in r, or its command failed. False: the connection
 * is gone. */
static bool handle(struct ring *rg, struct loop_req *r, int res)
{
	if (res == 0) {
		serve(r);
		return true;
	}
	if (res == -ENOTCONN || res == -ECONNABORTED || res == -ECANCELED || res == -ENODEV)
		return false;
	/* r->unique is 0 until r's first request: its command is still REGISTER */
	if (res == -EAGAIN || res == -EINTR) {
		submit_cmd(r, r->unique ? VDS_FUSE_URING_CMD_COMMIT_AND_FETCH :
			   VDS_FUSE_URING_CMD_REGISTER);
		return true;
	}
	if (!r->unique)
		fall_back(rg, res);
	else if (!atomic_exchange(&rg->warned, true))
		fuse_log(FUSE_LOG_ERR, "vdsfs: FUSE over io_uring: a commit failed: %s; an entry is lost\n",
			 strerror(-res));
	return true;
}

static void *worker(void *arg)
{
	struct ring_worker *w = arg;
	struct ring *rg = w->rg;
	struct vds_loop *lp = rg->lp;
	bool live = true;

	pthread_mutex_lock(&w->sq_lock);
	for (unsigned i = 0; i < w->nent; i++)
		submit_cmd_locked(w, w->ent[i], VDS_FUSE_URING_CMD_REGISTER);
	pthread_mutex_unlock(&w->sq_lock);
	while (live && !atomic_load(&lp->stopping)) {
		struct io_uring_cqe *cqe;
		int ret = io_uring_wait_cqe(&w->uring, &cqe);

		if (ret == -EINTR)
			continue;
		if (ret < 0) {
			fuse_log(FUSE_LOG_ERR, "vdsfs: FUSE over io_uring: %s\n", strerror(-ret));
			break;
		}
		do {
			struct loop_req *r = io_uring_cqe_get_data(cqe);
			int res = cqe->res;

			back_from_kernel(r);
			io_uring_cqe_seen(&w->uring, cqe);
			live = handle(rg, r, res) && live;
		} while (io_uring_peek_cqe(&w->uring, &cqe) == 0);
	}
	if (!live)
		loop_signal_stop(lp);
	return NULL;
}

static int worker_init(struct ring *rg, struct ring_worker *w, unsigned nent)
{
	struct io_uring_params p = { .flags = IORING_SETUP_SQE128 };
	int ret;

	w->rg = rg;
	pthread_mutex_init(&w->sq_lock, NULL);
	w->ent = calloc(nent ? nent : 1, sizeof(*w->ent));
	if (!w->ent)
		return -ENOMEM;
	ret = io_uring_queue_init_params(nent ? nent : 1, &w->uring, &p);
	if (ret)
		return ret;
	w->uring_ok = true;
	return 0;
}

static int add_entry(struct ring_worker *w, unsigned qid)
{
	struct loop_req *r = loop_req_alloc(w->rg->lp);

	if (!r)
		return -ENOMEM;
	r->w = w;
	r->qid = (uint16_t)qid;
	r->iov[0] = (struct iovec){ &r->hdr, sizeof(r->hdr) };
	r->iov[1] = (struct iovec){ loop_req_buf(r), LOOP_RING_PAYLOAD };
	w->ent[w->nent++] = r;
	return 0;
}

int ring_prepare(struct vds_loop *lp, struct ring **out)
{
	int nq = possible_cpus();
	unsigned nworkers = lp->conf.threads, total, *per;
	struct ring *rg;
	int ret = 0;

	if (nq < 0)
		return nq;
	total = (unsigned)nq * RING_QUEUE_DEPTH;
	if (nworkers > total)
		nworkers = total;
	rg = calloc(1, sizeof(*rg) + nworkers * sizeof(rg->w[0]));
	per = calloc(nworkers, sizeof(*per));
	if (!rg || !per) {
		free(rg);
		free(per);
		return -ENOMEM;
	}
	rg->lp = lp;
	rg->nqueues = (unsigned)nq;
	rg->nworkers = nworkers;
	/* Entry j of queue q goes to worker (q * depth + j) % nworkers. */
	for (unsigned e = 0; e < total; e++)
		per[e % nworkers]++;
	for (unsigned i = 0; i < nworkers && !ret; i++)
		ret = worker_init(rg, &rg->w[i], per[i]);
	for (unsigned e = 0; e < total && !ret; e++)
		ret = add_entry(&rg->w[e % nworkers], e / RING_QUEUE_DEPTH);
	free(per);
	if (ret) {
		ring_free(rg);
		return ret;
	}
	*out = rg;
	return 0;
}

/* With lp->threads_lock held. */
int ring_start(struct ring *rg)
{
	for (unsigned i = 0; i < rg->nworkers; i++) {
		int ret = pthread_create(&rg->w[i].tid, NULL, worker, &rg->w[i]);

		if (ret)
			return -ret;
		rg->w[i].running = true;
	}
	return 0;
}

void ring_stop(struct ring *rg)
{
	for (unsigned i = 0; i < rg->nworkers; i++)
		if (rg->w[i].running) {
			loop_join_knocking(rg->w[i].tid);
			rg->w[i].running = false;
		}
}

bool ring_serving(struct ring *rg)
{
	return !atomic_load(&rg->fell_back);
}

void ring_free(struct ring *rg)
{
	for (unsigned i = 0; i < rg->nworkers; i++) {
		struct ring_worker *w = &rg->w[i];

		if (w->uring_ok)
			io_uring_queue_exit(&w->uring);
		for (unsigned j = 0; j < w->nent; j++)
			loop_req_free(w->ent[j]);
		free(w->ent);
		pthread_mutex_destroy(&w->sq_lock);
	}
	free(rg);
}
