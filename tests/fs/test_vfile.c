/* Unit tests for fs/ns/vfile.c, the route API: where an open file's I/O goes.
 *
 * A passthrough file's I/O goes to the handle's own backing fd; a routed file's to
 * the route, never to the fds. The route here is a fake that records its calls and
 * changes nothing, so any byte that moves in a backing file was moved by vfile.c
 * itself. Files are real, on a datastore in a temporary directory, and opened
 * through the namespace as the FUSE layer does (ns_entry, vfile_open).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsfix.h"
#include "ns.h"
#include "vfile.h"

static struct fsfix fx;

static void setup(void)
{
	fsfix_init(&fx, 1);
}

static void teardown(void)
{
	fsfix_fini(&fx);
}

TestSuite(vfile, .init = setup, .fini = teardown);

/* --- the fake route -------------------------------------------------------------- */

enum call { C_READ, C_WRITE, C_FLUSH, C_FALLOC, C_LSEEK, C_TRUNC, C_FIX, C_N };

struct rec {
	enum call log[64];
	int n, count[C_N];
	off_t off, len, size;
	int mode, whence, datasync;
	char wrote[64];
	/* results to give */
	ssize_t write_ret;	/* 0: len */
	int flush_ret, trunc_ret;
};

static void note(struct rec *r, enum call c)
{
	if (r->n < 64)
		r->log[r->n++] = c;
	r->count[c]++;
}

static ssize_t f_read(void *arg, void *buf, size_t len, off_t off)
{
	struct rec *r = arg;

	note(r, C_READ);
	memset(buf, 'R', len);
	r->off = off;
	r->len = (off_t)len;
	return (ssize_t)len;
}

static ssize_t f_write(void *arg, const void *buf, size_t len, off_t off)
{
	struct rec *r = arg;

	note(r, C_WRITE);
	memcpy(r->wrote, buf, len < sizeof(r->wrote) ? len : sizeof(r->wrote));
	r->off = off;
	r->len = (off_t)len;
	return r->write_ret ? r->write_ret : (ssize_t)len;
}

static int f_flush(void *arg, int datasync)
{
	struct rec *r = arg;

	note(r, C_FLUSH);
	r->datasync = datasync;
	return r->flush_ret;
}

static int f_falloc(void *arg, int mode, off_t off, off_t len)
{
	struct rec *r = arg;

	note(r, C_FALLOC);
	r->mode = mode;
	r->off = off;
	r->len = len;
	return 0;
}

static off_t f_lseek(void *arg, off_t off, int whence)
{
	struct rec *r = arg;

	note(r, C_LSEEK);
	r->whence = whence;
	return off + 4242;
}

static int f_trunc(void *arg, off_t size)
{
	struct rec *r = arg;

	note(r, C_TRUNC);
	r->size = size;
	return r->trunc_ret;
}

static void f_fix(void *arg, struct stat *st)
{
	note(arg, C_FIX);
	st->st_size = 123456;
}

static const struct vroute fake = {
	.read = f_read, .write = f_write, .flush = f_flush, .fallocate = f_falloc,
	.lseek = f_lseek, .truncate = f_trunc, .fix_stat = f_fix,
};

/* --- helpers ------------------------------------------------------------------- */

static const char content[] = "0123456789abcdefghijklmnopqrstuvwxyz";

/* A file name on the datastore holding content, and its node. */
static struct node *file_node(const char *name, char *path, size_t len)
{
	struct node *n;
	struct stat st;

	fsfix_path(&fx, 0, name, path, len);
	write_file(path, content, sizeof(content));
	cr_assert_eq(ns_entry(fx.ns, &fx.ns->nodes.root, name, &n, &st), 0);
	return n;
}

static struct vhandle *open_h(struct node *n, int flags)
{
	struct vhandle *h;
	int ret = vfile_open(fx.ns, n, flags, &h);

	cr_assert_eq(ret, 0, "vfile_open: %s", strerror(-ret));
	return h;
}

static void route(struct vfile *vf, const struct vroute *r, void *arg)
{
	vfile_pause(vf);
	vfile_set_route(vf, r, arg);
	vfile_resume(vf);
}

static void expect_backing(const char *path, const void *want, size_t len)
{
	size_t got_len;
	uint8_t *got = read_file(path, &got_len);

	cr_assert_eq(got_len, len, "backing file is %zu bytes, want %zu", got_len, len);
	cr_assert(!memcmp(got, want, len), "backing file bytes changed");
	free(got);
}

/* --- passthrough --------------------------------------------------------------- */

Test(vfile, passthrough_io_goes_to_each_handles_own_fd)
{
	char p[PATH_MAX], buf[8];
	struct node *n = file_node("f", p, sizeof(p));
	struct vhandle *rw = open_h(n, O_RDWR), *ro = open_h(n, O_RDONLY);

	cr_assert(!vfile_routed(rw->vf));
	cr_assert_eq(vfile_write(rw, "HELLO", 5, 3), 5);
	cr_assert_eq(vfile_write(ro, "nope", 4, 0), -EBADF,
		     "a write through a read-only handle did not use that handle's fd");
	cr_assert_eq(vfile_read(ro, buf, 8, 0), 8);
	cr_assert(!memcmp(buf, "012HELLO", 8));
	cr_assert_eq(vfile_fallocate(rw, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 2), 0);
	cr_assert_eq(vfile_fsync(rw, 1), 0);
	cr_assert_eq(vfile_lseek(ro, 0, SEEK_END), (off_t)sizeof(content));
	cr_assert_eq(vfile_lseek(ro, (off_t)sizeof(content), SEEK_DATA), -ENXIO);

	char want[sizeof(content)];

	memcpy(want, content, sizeof(want));
	memcpy(want + 3, "HELLO", 5);
	want[0] = want[1] = 0;
	expect_backing(p, want, sizeof(want));

	/* Resizes by node: through the handle if given, else the node's O_PATH fd. */
	struct vfile *vf = vfile_hold(fx.ns, n);

	cr_assert_eq(vf, rw->vf);
	cr_assert_eq(vfile_truncate(vf, rw, n, 10), 0);
	cr_assert_eq(vfile_truncate(vf, NULL, n, 7), 0);
	vfile_unhold(fx.ns, vf);
	expect_backing(p, want, 7);
	vfile_release(fx.ns, rw);
	vfile_release(fx.ns, ro);
}

Test(vfile, o_trunc_passthrough_is_the_backing_opens)
{
	char p[PATH_MAX];
	struct node *n = file_node("f", p, sizeof(p));
	struct vhandle *keep = open_h(n, O_RDONLY);
	struct vhandle *h = open_h(n, O_WRONLY | O_TRUNC);

	expect_backing(p, "", 0);
	cr_assert_eq(h->flags & (O_TRUNC | O_CREAT | O_APPEND), 0,
		     "flags the backing must not see again are kept on the handle");
	cr_assert_eq(fcntl(h->fd, F_GETFL) & O_ACCMODE, O_WRONLY);
	vfile_release(fx.ns, h);
	vfile_release(fx.ns, keep);
}

/* --- routed ---------------------------------------------------------------------- */

Test(vfile, routed_io_goes_to_the_route_and_never_to_the_fds)
{
	char p[PATH_MAX], buf[16];
	struct node *n = file_node("f", p, sizeof(p));
	struct vhandle *h = open_h(n, O_RDWR);
	struct rec r = { 0 };
	struct stat st;

	route(h->vf, &fake, &r);
	cr_assert(vfile_routed(h->vf));
	cr_assert_eq(vfile_write(h, "WXYZ", 4, 9), 4);
	cr_assert_eq(r.count[C_WRITE], 1);
	cr_assert(r.off == 9 && r.len == 4 && !memcmp(r.wrote, "WXYZ", 4));
	cr_assert_eq(r.count[C_FLUSH], 0, "a plain handle's write was flushed");
	cr_assert_eq(vfile_read(h, buf, 16, 5), 16);
	cr_assert(r.count[C_READ] == 1 && r.off == 5 && buf[0] == 'R');
	cr_assert_eq(vfile_fsync(h, 0), 0);
	cr_assert(r.count[C_FLUSH] == 1 && r.datasync == 0);
	cr_assert_eq(vfile_fallocate(h, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4, 8), 0);
	cr_assert(r.count[C_FALLOC] == 1 && r.off == 4 && r.len == 8 &&
		  r.mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE));
	cr_assert_eq(vfile_lseek(h, 100, SEEK_HOLE), 4342);
	cr_assert(r.count[C_LSEEK] == 1 && r.whence == SEEK_HOLE);

	struct vfile *vf = vfile_hold(fx.ns, n);

	cr_assert_eq(vfile_truncate(vf, h, n, 3), 0);
	cr_assert(r.count[C_TRUNC] == 1 && r.size == 3);
	vfile_unhold(fx.ns, vf);
	cr_assert_eq(ns_stat_node(fx.ns, n, &st), 0);
	cr_assert_eq(st.st_size, 123456, "stat does not show the route's size");
	cr_assert_eq(r.count[C_FIX], 1);
	cr_assert_eq(st.st_ino, n->st_ino);
	expect_backing(p, content, sizeof(content));

	/* Back to passthrough: the fds again, the route no more. */
	route(h->vf, NULL, NULL);
	cr_assert_eq(vfile_write(h, "ab", 2, 0), 2);
	cr_assert_eq(r.count[C_WRITE], 1);
	cr_assert_eq(ns_stat_node(fx.ns, n, &st), 0);
	cr_assert_eq(st.st_size, (off_t)sizeof(content));
	vfile_release(fx.ns, h);
}

Test(vfile, o_trunc_routed_goes_through_the_routes_truncate)
{
	char p[PATH_MAX];
	struct node *n = file_node("f", p, sizeof(p));
	struct vfile *vf = vfile_get(fx.ns, n);	/* the route owner's reference */
	struct rec r = { 0 };
	struct vhandle *h;

	route(vf, &fake, &r);
	h = open_h(n, O_WRONLY | O_TRUNC);
	cr_assert_eq(r.count[C_TRUNC], 1);
	cr_assert_eq(r.size, 0);
	expect_backing(p, content, sizeof(content));	/* the base stays frozen */
	cr_assert_eq(vf->nhandles, 1);

	/* The route refuses: the open fails, and leaves nothing behind. */
	int fds = count_fds();

	r.trunc_ret = -ENOSPC;
	cr_assert_eq(vfile_open(fx.ns, n, O_RDWR | O_TRUNC, &h), -ENOSPC);
	cr_assert_eq(vf->nhandles, 1, "a failed open left a handle");
	cr_assert_eq(vf->refs, 2, "a failed open kept its reference");
	cr_assert_eq(count_fds(), fds, "a failed open leaked its backing fd");
	expect_backing(p, content, sizeof(content));

	route(vf, NULL, NULL);
	vfile_release(fx.ns, vf->handles);
	vfile_put(fx.ns, vf);
}

Test(vfile, a_dsync_handles_routed_write_is_flushed_before_it_returns)
{
	char p[PATH_MAX];
	struct node *n = file_node("f", p, sizeof(p));
	struct vhandle *plain = open_h(n, O_RDWR);
	struct vhandle *dsync = open_h(n, O_RDWR | O_DSYNC);
	struct vhandle *sync = open_h(n, O_WRONLY | O_SYNC);
	struct rec r = { 0 };

	route(plain->vf, &fake, &r);
	cr_assert_eq(vfile_write(plain, "a", 1, 0), 1);
	cr_assert_eq(r.count[C_FLUSH], 0);
	cr_assert_eq(vfile_write(dsync, "b", 1, 0), 1);
	cr_assert_eq(r.n, 3);
	cr_assert(r.log[1] == C_WRITE && r.log[2] == C_FLUSH, "not write, then flush");
	cr_assert_eq(r.datasync, 1);
	cr_assert_eq(vfile_write(sync, "c", 1, 0), 1);
	cr_assert_eq(r.count[C_FLUSH], 2, "an O_SYNC handle's write was not flushed");

	/* The flush's failure is the write's; a failed write is not flushed. */
	r.flush_ret = -EIO;
	cr_assert_eq(vfile_write(dsync, "d", 1, 0), -EIO);
	r.flush_ret = 0;
	r.write_ret = -ENOSPC;
	cr_assert_eq(vfile_write(dsync, "e", 1, 0), -ENOSPC);
	cr_assert_eq(r.count[C_FLUSH], 3, "a failed write was flushed");

	route(plain->vf, NULL, NULL);
	vfile_release(fx.ns, plain);
	vfile_release(fx.ns, dsync);
	vfile_release(fx.ns, sync);
}

/* --- rebinding handles to another backing file --------------------------------- */

#define NH 300

static int mode_of(int i)
{
	static const int modes[] = { O_RDONLY, O_RDWR, O_WRONLY };

	return modes[i % 3];
}

static ino_t fd_ino(int fd)
{
	struct stat st;

	cr_assert_eq(fstat(fd, &st), 0);
	return st.st_ino;
}

Test(vfile, rebind_moves_every_handle_and_done_closes_the_old_fds)
{
	char p[PATH_MAX], q[PATH_MAX];
	struct node *n = file_node("f", p, sizeof(p));
	struct vhandle *h[NH];
	struct vfile_rebind rb;
	struct stat qst;
	uint64_t st_ino = n->st_ino;
	int old_opath = -1, node_fd = n->fd;

	for (int i = 0; i < NH; i++)
		h[i] = open_h(n, mode_of(i));
	fsfix_path(&fx, 0, "g", q, sizeof(q));
	write_file(q, "new", 3);

	int qfd = open(q, O_RDWR | O_CLOEXEC), qpath = open(q, O_PATH | O_CLOEXEC);
	struct vfile *vf = h[0]->vf;
	int fds = count_fds();

	cr_assert_eq(fstat(qpath, &qst), 0);
	vfile_pause(vf);
	cr_assert_eq(vfile_rebind_prepare(vf, qfd, &rb), 0);
	cr_assert_eq(rb.n, NH);
	cr_assert_eq(count_fds(), fds + NH);
	for (int i = 0; i < NH; i++)
		cr_assert_eq(fd_ino(h[i]->fd), file_ino(p), "prepare moved a handle already");
	vfile_rebind_commit(fx.ns, vf, &rb, 0, qpath, &qst, &old_opath);
	vfile_resume(vf);

	cr_assert_eq(old_opath, node_fd);
	cr_assert_eq(n->fd, qpath);
	cr_assert_eq(n->st_ino, st_ino);
	for (int i = 0; i < NH; i++) {
		cr_assert_eq(fd_ino(h[i]->fd), qst.st_ino, "handle %d not moved", i);
		cr_assert_eq(fcntl(h[i]->fd, F_GETFL) & O_ACCMODE, mode_of(i),
			     "handle %d lost its access mode", i);
	}
	for (size_t i = 0; i < rb.n; i++)
		cr_assert_eq(fd_ino(rb.fds[i]), file_ino(p), "rb does not hold the old fds");
	cr_assert_eq(vfile_write(h[1], "NEW", 3, 0), 3);
	expect_backing(q, "NEW", 3);
	expect_backing(p, content, sizeof(content));

	int old_fds[NH];

	memcpy(old_fds, rb.fds, sizeof(old_fds));
	vfile_rebind_done(&rb);
	for (int i = 0; i < NH; i++)
		cr_assert(!fd_is_open(old_fds[i]), "old fd %d still open after done", i);
	cr_assert_eq(count_fds(), fds);
	close(old_opath);
	close(qfd);

	/* The node is found by its new inode: the name g leads to it. */
	struct node *m;
	struct stat st;

	cr_assert_eq(ns_entry(fx.ns, &fx.ns->nodes.root, "g", &m, &st), 0);
	cr_assert_eq(m, n, "the rebound node is not found by its new inode");
	cr_assert_eq(st.st_ino, st_ino);
	node_forget(&fx.ns->nodes, m, 1);
	for (int i = 0; i < NH; i++)
		vfile_release(fx.ns, h[i]);
}

/* What a failed prepare must leave: every handle on the old file, the node too,
 * and no fd behind once done is called. */
static void expect_nothing_moved(struct node *n, struct vhandle **h, int nh, ino_t ino,
				 int node_fd)
{
	cr_assert_eq(n->fd, node_fd);
	for (int i = 0; i < nh; i++)
		cr_assert_eq(fd_ino(h[i]->fd), ino, "handle %d moved by a failed prepare", i);
}

Test(vfile, a_failed_prepare_moves_nothing)
{
	char p[PATH_MAX], d[PATH_MAX];
	struct node *n = file_node("f", p, sizeof(p));
	struct vhandle *h[7];
	struct vfile_rebind rb;

	/* Newest first in the list: the read-write handle is the fourth. */
	for (int i = 0; i < 7; i++)
		h[i] = open_h(n, i == 3 ? O_RDWR : O_RDONLY);
	fsfix_path(&fx, 0, "dir", d, sizeof(d));
	cr_assert_eq(mkdir(d, 0755), 0);

	int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);	/* opens O_RDONLY, never O_RDWR */
	int fds = count_fds();

	vfile_pause(h[0]->vf);
	cr_assert_eq(vfile_rebind_prepare(h[0]->vf, dfd, &rb), -EISDIR);
	vfile_resume(h[0]->vf);
	cr_assert_eq(rb.err, -EISDIR);
	cr_assert_eq(rb.failed_at, 3, "failed_at names handle %zu", rb.failed_at);
	cr_assert_eq(rb.n, 3);
	expect_nothing_moved(n, h, 7, file_ino(p), n->fd);
	vfile_rebind_done(&rb);
	cr_assert_eq(count_fds(), fds, "done did not close what the failed prepare opened");
	close(dfd);
	for (int i = 0; i < 7; i++)
		vfile_release(fx.ns, h[i]);
}

Test(vfile, running_out_of_fds_midway_moves_nothing)
{
	char p[PATH_MAX], q[PATH_MAX];
	struct node *n = file_node("f", p, sizeof(p));
	struct vhandle *h[NH];
	struct vfile_rebind rb;
	struct rlimit old, low;

	for (int i = 0; i < NH; i++)
		h[i] = open_h(n, mode_of(i));
	fsfix_path(&fx, 0, "g", q, sizeof(q));
	write_file(q, "new", 3);

	int qfd = open(q, O_RDWR | O_CLOEXEC), node_fd = n->fd, fds = count_fds();
	int maxfd = 0;

	/* Room for a third of the new fds (fds are numbered from the lowest free). */
	for (int i = 0; i < NH; i++)
		maxfd = h[i]->fd > maxfd ? h[i]->fd : maxfd;
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)(maxfd > qfd ? maxfd : qfd) + 1 + NH / 3;
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	vfile_pause(h[0]->vf);
	int ret = vfile_rebind_prepare(h[0]->vf, qfd, &rb);
	vfile_resume(h[0]->vf);
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &old), 0);

	cr_assert_eq(ret, -EMFILE, "prepare: %s", strerror(-ret));
	cr_assert(rb.n > 0 && rb.n < NH && rb.failed_at == rb.n, "n %zu failed_at %zu", rb.n,
		  rb.failed_at);
	expect_nothing_moved(n, h, NH, file_ino(p), node_fd);
	vfile_rebind_done(&rb);
	cr_assert_eq(count_fds(), fds);
	cr_assert_eq(vfile_write(h[1], "still", 5, 0), 5);
	expect_backing(q, "new", 3);
	close(qfd);
	for (int i = 0; i < NH; i++)
		vfile_release(fx.ns, h[i]);
}

/* --- the gate ------------------------------------------------------------------- */

struct gated {
	struct vfile *vf;
	atomic_int calls;
	atomic_bool gate_free;	/* the gate could be taken exclusive inside a call */
};

static ssize_t g_read(void *arg, void *buf, size_t len, off_t off)
{
	struct gated *g = arg;

	(void)off;
	if (pthread_rwlock_trywrlock(&g->vf->gate) == 0) {
		atomic_store(&g->gate_free, true);
		pthread_rwlock_unlock(&g->vf->gate);
	}
	memset(buf, 'G', len);
	atomic_fetch_add(&g->calls, 1);
	return (ssize_t)len;
}

static const struct vroute gated_route = { .read = g_read };

struct reader {
	struct vhandle *h;
	atomic_int tid;
	atomic_bool done;
	ssize_t ret;
};

static void *reader(void *arg)
{
	struct reader *r = arg;
	char buf[4];

	atomic_store(&r->tid, (int)gettid());
	r->ret = vfile_read(r->h, buf, sizeof(buf), 0);
	atomic_store(&r->done, true);
	return NULL;
}

/* Route calls run with the gate held shared; a pause holds new I/O back until
 * resume, and what the I/O then sees is the route set while paused. */
Test(vfile, a_pause_holds_io_back_and_route_calls_run_under_the_gate)
{
	char p[PATH_MAX], buf[4];
	struct node *n = file_node("f", p, sizeof(p));
	struct vhandle *h = open_h(n, O_RDONLY);
	struct gated g1 = { .vf = h->vf }, g2 = { .vf = h->vf };
	struct reader r = { .h = h };
	pthread_t t;

	route(h->vf, &gated_route, &g1);
	cr_assert_eq(vfile_read(h, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	cr_assert_eq(atomic_load(&g1.calls), 1);
	cr_assert(!atomic_load(&g1.gate_free), "a route call ran without the gate held");

	vfile_pause(h->vf);
	cr_assert(h->vf->paused);
	cr_assert_eq(pthread_create(&t, NULL, reader, &r), 0);
	/* The reader either blocks on the gate (it sleeps) or, with a broken gate,
	 * finishes through the route of before the pause. */
	while (!atomic_load(&r.done) && (!atomic_load(&r.tid) || thread_state(atomic_load(&r.tid)) != 'S'))
		sched_yield();
	cr_assert(!atomic_load(&r.done), "a read went through while the file was paused");
	vfile_set_route(h->vf, &gated_route, &g2);
	vfile_resume(h->vf);
	pthread_join(t, NULL);
	cr_assert_eq(r.ret, (ssize_t)sizeof(buf));
	cr_assert_eq(atomic_load(&g1.calls), 1, "the held read used the old route");
	cr_assert_eq(atomic_load(&g2.calls), 1);
	route(h->vf, NULL, NULL);
	vfile_release(fx.ns, h);
}
