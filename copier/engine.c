/* engine.c -- the io_uring data loop of one copy.
 *
 * The file is cut into chunks (chunk_size, 4 KiB aligned) that cover only
 * the source's data extents, in increasing offset order. Each of the
 * queue_depth slots owns one registered buffer and carries one chunk
 * through READ then WRITE; slots are independent, so reads of later chunks
 * overlap writes of earlier ones and up to queue_depth I/Os are in flight.
 *
 * Invariants:
 *  - the "cursor" is the next offset to issue; every data byte below the
 *    cursor is either written or held by a busy slot, so
 *    min(cursor, offset of every busy slot) is a durable watermark once the
 *    destination is fdatasync()ed: that is what checkpoints record;
 *  - with O_DIRECT on the destination a tail chunk is written rounded up to
 *    4 KiB with zero padding; copy.c truncates to the real size at the end;
 *  - the loop stops issuing on the first error or on cancel, and returns only
 *    after every in-flight I/O has completed, so no buffer is freed under
 *    the kernel.
 *
 * O_DIRECT fallback: a direct I/O that fails with EINVAL (a filesystem that
 * accepted the open but not the alignment) switches that side to its
 * buffered descriptor and the I/O is reissued; data never changes meaning.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

enum slot_state { SLOT_FREE, SLOT_READ, SLOT_WRITE };

struct slot {
	enum slot_state state;
	uint64_t off;      /* file offset of the chunk */
	uint32_t len;      /* data bytes (short only at end of file) */
	uint32_t pos;      /* bytes already done in the current phase */
	unsigned char *buf;
};

struct loop {
	struct engine_job *ej;
	struct io_uring ring;
	struct slot *slots;
	unsigned nslots, busy;
	unsigned char *mem;
	size_t chunk;
	bool fixed;              /* buffers registered */
	bool ring_ok;            /* ring set up: must be torn down */
	uint64_t cursor;         /* next offset to issue */
	uint64_t ext_end;        /* end of the extent the cursor is in */
	bool no_more;            /* no data left to issue */
	int err;                 /* first error; stops issuing */
	uint64_t throttle_until; /* do not issue before (ns) */
	uint64_t written;        /* data bytes written this run */
	uint64_t last_ckpt;      /* watermark of the last checkpoint */
	uint64_t t0, last_progress;
};

static int loop_fail(struct loop *l, int err, const char *fmt, uint64_t off)
{
	if (!l->err)
		l->err = copier_fail(l->ej->res, err, fmt, (unsigned long long)off);
	return l->err;
}

/* No more buffer than the data needs: allocating, faulting in and registering
 * (pinning) 16 MiB took most of the time of copying a small file. */
static void size_buffers(struct loop *l, uint64_t data)
{
	uint64_t need = align_up(data ? data : 1, COPIER_ALIGN);

	if (need < l->chunk)
		l->chunk = need;
	if ((need + l->chunk - 1) / l->chunk < l->nslots)
		l->nslots = (need + l->chunk - 1) / l->chunk;
}

static int loop_setup(struct loop *l)
{
	const struct copier_opts *o = l->ej->o;
	struct iovec *iov;
	unsigned i;
	int r;

	/* caps keep lengths within uint32_t and the ring within its limits */
	l->nslots = o->queue_depth ? o->queue_depth : 16;
	l->nslots = l->nslots > 1024 ? 1024 : l->nslots;
	l->chunk = o->chunk_size ? align_up(o->chunk_size, COPIER_ALIGN) : 1u << 20;
	l->chunk = l->chunk > (64u << 20) ? 64u << 20 : l->chunk;
	size_buffers(l, l->ej->data_total);
	r = io_uring_queue_init(l->nslots * 2, &l->ring, 0);
	if (r < 0)
		return copier_fail(l->ej->res, r, "io_uring_queue_init");
	l->ring_ok = true;
	if (posix_memalign((void **)&l->mem, COPIER_ALIGN, l->chunk * l->nslots))
		return copier_fail(l->ej->res, -ENOMEM, "buffer allocation");
	l->slots = calloc(l->nslots, sizeof(*l->slots));
	iov = calloc(l->nslots, sizeof(*iov));
	if (!l->slots || !iov) {
		free(iov);
		return copier_fail(l->ej->res, -ENOMEM, "slot allocation");
	}
	for (i = 0; i < l->nslots; i++) {
		l->slots[i].buf = l->mem + i * l->chunk;
		iov[i].iov_base = l->slots[i].buf;
		iov[i].iov_len = l->chunk;
	}
	/* Registration pins the buffers once instead of per I/O; if the memlock
	 * accounting refuses, plain reads/writes do the same job a bit slower. */
	l->fixed = io_uring_register_buffers(&l->ring, iov, l->nslots) == 0;
	free(iov);
	return 0;
}

static void loop_teardown(struct loop *l)
{
	if (l->ring_ok)
		io_uring_queue_exit(&l->ring);
	free(l->slots);
	free(l->mem);
}

/* Take the next chunk off the source's data map; 0 = none left. */
static int next_chunk(struct loop *l, uint64_t *off, uint32_t *len)
{
	struct engine_job *ej = l->ej;
	uint64_t s, e, end;
	int r;

	if (l->cursor >= l->ext_end) {
		r = extent_next(ej->src.buf_fd, l->cursor, ej->size, &s, &e);
		if (r < 0)
			return loop_fail(l, r, "finding data in source at offset %llu", l->cursor);
		if (r == 0)
			return 0;
		s = align_down(s, COPIER_ALIGN);
		l->cursor = s > l->cursor ? s : l->cursor;
		l->ext_end = align_up(e, COPIER_ALIGN);
	}
	end = l->cursor + l->chunk;
	if (end > l->ext_end)
		end = l->ext_end;
	*off = l->cursor;
	*len = (uint32_t)((end > ej->size ? ej->size : end) - l->cursor);
	l->cursor = end;
	return 1;
}

static void prep_io(struct loop *l, struct slot *sl)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);
	bool rd = sl->state == SLOT_READ;
	const struct side *sd = rd ? &l->ej->src : &l->ej->dst;
	uint32_t n = sl->len - sl->pos;
	unsigned idx = (unsigned)(sl - l->slots);

	/* slots <= half the SQ ring size and one SQE per busy slot: never NULL */
	if (sd->direct)
		n = (uint32_t)align_up(n, COPIER_ALIGN);
	if (l->fixed && rd)
		io_uring_prep_read_fixed(sqe, side_fd(sd), sl->buf + sl->pos, n, sl->off + sl->pos, (int)idx);
	else if (l->fixed)
		io_uring_prep_write_fixed(sqe, side_fd(sd), sl->buf + sl->pos, n, sl->off + sl->pos, (int)idx);
	else if (rd)
		io_uring_prep_read(sqe, side_fd(sd), sl->buf + sl->pos, n, sl->off + sl->pos);
	else
		io_uring_prep_write(sqe, side_fd(sd), sl->buf + sl->pos, n, sl->off + sl->pos);
	io_uring_sqe_set_data(sqe, sl);
}

/* Charge every limiter; the longest debt decides when we may issue again. */
static void charge_limiters(struct loop *l, uint32_t len)
{
	const struct copier_opts *o = l->ej->o;
	uint64_t now = copier_now_ns(), w, wait = 0;
	int i;

	if (l->ej->job_lim)
		wait = limiter_reserve_at(l->ej->job_lim, len, now);
	for (i = 0; i < COPIER_MAX_LIMITERS && o->limiters[i]; i++) {
		w = limiter_reserve_at(o->limiters[i], len, now);
		wait = w > wait ? w : wait;
	}
	if (wait)
		l->throttle_until = now + wait;
}

static bool cancelled(const struct loop *l)
{
	atomic_bool *c = l->ej->o->cancel;

	return c && atomic_load(c);
}

static void issue_reads(struct loop *l)
{
	struct slot *sl;
	uint64_t off = 0;
	uint32_t len = 0;
	unsigned i;

	for (i = 0; i < l->nslots && !l->err && !l->no_more; i++) {
		sl = &l->slots[i];
		if (sl->state != SLOT_FREE)
			continue;
		if (cancelled(l) || copier_now_ns() < l->throttle_until)
			return;
		if (next_chunk(l, &off, &len) <= 0) {
			l->no_more = true;
			return;
		}
		*sl = (struct slot){ .state = SLOT_READ, .off = off, .len = len, .buf = sl->buf };
		charge_limiters(l, len);
		prep_io(l, sl);
		l->busy++;
	}
}

/* A direct I/O refused with EINVAL: use the buffered descriptor from now on. */
static bool fall_back_buffered(struct loop *l, struct slot *sl, int res)
{
	struct side *sd = sl->state == SLOT_READ ? &l->ej->src : &l->ej->dst;

	if (res != -EINVAL || !sd->direct)
		return false;
	sd->direct = false;
	prep_io(l, sl);
	return true;
}

static void complete_read(struct loop *l, struct slot *sl, int res)
{
	struct engine_job *ej = l->ej;

	if (res == 0)
		res = -ENODATA;  /* source shrank under us */
	if (res < 0) {
		loop_fail(l, res == -ENODATA ? -EIO : res, res == -ENODATA ?
			  "source shorter than expected at offset %llu" :
			  "read from source at offset %llu", sl->off + sl->pos);
		goto out;
	}
	sl->pos += (uint32_t)res;
	if (sl->pos < sl->len) {  /* short read: ask for the rest */
		prep_io(l, sl);
		return;
	}
	if (ej->dst.direct && sl->len % COPIER_ALIGN)  /* zero pad of the tail */
		memset(sl->buf + sl->len, 0, align_up(sl->len, COPIER_ALIGN) - sl->len);
	sl->state = SLOT_WRITE;
	sl->pos = 0;
	if (!l->err) {
		prep_io(l, sl);
		return;
	}
out:
	sl->state = SLOT_FREE;
	l->busy--;
}

static void complete_write(struct loop *l, struct slot *sl, int res)
{
	if (res == 0)
		res = -EIO;
	if (res < 0) {
		loop_fail(l, res, "write to destination at offset %llu", sl->off + sl->pos);
	} else {
		sl->pos += (uint32_t)res;
		if (sl->pos < sl->len && !l->err) {  /* short write: the rest */
			prep_io(l, sl);
			return;
		}
		if (sl->pos >= sl->len)
			l->written += sl->len;
	}
	sl->state = SLOT_FREE;
	l->busy--;
}

static void reap(struct loop *l)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	struct slot *sl;
	int res;

	io_uring_for_each_cqe(&l->ring, head, cqe) {
		sl = io_uring_cqe_get_data(cqe);
		res = cqe->res;
		n++;
		if (res < 0 && fall_back_buffered(l, sl, res))
			continue;
		if (res == -EINTR || res == -EAGAIN) {
			prep_io(l, sl);
			continue;
		}
		if (sl->state == SLOT_READ)
			complete_read(l, sl, res);
		else
			complete_write(l, sl, res);
	}
	io_uring_cq_advance(&l->ring, n);
}

static uint64_t watermark(const struct loop *l)
{
	uint64_t w = l->no_more ? l->ej->size : l->cursor;
	unsigned i;

	for (i = 0; i < l->nslots; i++)
		if (l->slots[i].state != SLOT_FREE && l->slots[i].off < w)
			w = l->slots[i].off;
	return w;
}

static void report(struct loop *l, bool force)
{
	const struct copier_opts *o = l->ej->o;
	struct copier_progress p;
	uint64_t now = copier_now_ns(), ms = o->progress_ms ? o->progress_ms : 200;

	if (!o->progress || (!force && now - l->last_progress < ms * 1000000))
		return;
	l->last_progress = now;
	p.done = l->ej->done_before + l->written;
	p.total = l->ej->data_total;
	if (p.done > p.total)
		p.done = p.total;  /* alignment padding is not data */
	p.checkpointed = l->last_ckpt;
	p.resumed_from = l->ej->start_off;
	p.flags = l->ej->src.direct && l->ej->dst.direct ? COPIER_USED_DIRECT : 0;
	p.rate = now > l->t0 ? (double)l->written * 1e9 / (double)(now - l->t0) : 0;
	o->progress(o->progress_arg, &p);
}

/* Durable watermark -> checkpoint. fdatasync first: see ckpt.c. */
static void maybe_checkpoint(struct loop *l)
{
	struct engine_job *ej = l->ej;
	uint64_t every = ej->o->checkpoint_every ? ej->o->checkpoint_every : 256ull << 20;
	uint64_t w = watermark(l);
	int r;

	if (l->err || w < l->last_ckpt + every || w >= ej->size)
		return;
	if (fdatasync(side_fd(&ej->dst)) < 0) {
		loop_fail(l, -errno, "fdatasync of destination at offset %llu", w);
		return;
	}
	ej->ck.done_off = w;
	r = ckpt_write(ej->dst_dirfd, ej->dst_rel, &ej->ck);
	if (r < 0) {
		loop_fail(l, r, "writing checkpoint at offset %llu", w);
		return;
	}
	l->last_ckpt = w;
	report(l, true);
}

/* Sleep or wait for completions, but never past a throttle deadline, and
 * wake up now and then to notice cancel. */
static void wait_some(struct loop *l)
{
	uint64_t now = copier_now_ns(), t = 100000000;
	struct __kernel_timespec ts;
	struct io_uring_cqe *cqe;

	if (l->throttle_until > now && l->throttle_until - now < t)
		t = l->throttle_until - now;
	ts.tv_sec = (long long)(t / 1000000000);
	ts.tv_nsec = (long long)(t % 1000000000);
	if (l->busy)
		io_uring_wait_cqe_timeout(&l->ring, &cqe, &ts);
	else
		nanosleep(&(struct timespec){ .tv_sec = (time_t)ts.tv_sec, .tv_nsec = (long)ts.tv_nsec }, NULL);
}

static bool transient(int r)
{
	return r == -EINTR || r == -EAGAIN || r == -EBUSY;
}

static int loop_run(struct loop *l)
{
	int r;

	l->cursor = l->ej->start_off;
	l->last_ckpt = l->ej->start_off;
	l->t0 = l->last_progress = copier_now_ns();
	for (;;) {
		issue_reads(l);
		r = io_uring_submit(&l->ring);
		if (r < 0 && !transient(r)) {
			/* Only a broken ring fails like this; what it holds is
			 * cancelled by io_uring_queue_exit(). */
			loop_fail(l, r, "io_uring_submit at offset %llu", l->cursor);
			break;
		}
		if (!l->busy && (l->no_more || l->err || cancelled(l)))
			break;
		wait_some(l);
		reap(l);
		maybe_checkpoint(l);
		report(l, false);
	}
	if (!l->err && cancelled(l))
		l->err = copier_fail(l->ej->res, -ECANCELED, "copy cancelled");
	if (!l->err)
		report(l, true);
	return l->err;
}

int engine_run(struct engine_job *ej)
{
	struct loop l = { .ej = ej };
	int r;

	r = loop_setup(&l);
	if (!r)
		r = loop_run(&l);
	ej->res->copied = l.written;
	loop_teardown(&l);
	return r;
}
