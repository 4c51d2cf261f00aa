/* vfile.c - open files and their route (see vfile.h for the model and the locks). */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "clock.h"
#include "iostat.h"
#include "lock.h"
#include "ns.h"
#include "paths.h"
#include "vfile.h"

/* Flags the backing open must not see: O_CREAT and O_EXCL were acted on by the
 * lookup or create before, O_TRUNC is carried out by vfile_open itself (the route
 * decides how), and O_APPEND would make Linux pwrite ignore its offset while the
 * kernel already sends the append offset. */
#define VFILE_STRIP	(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND)

static struct vfile *vfile_new(struct ns *ns, struct node *n)
{
	struct vfile *vf = calloc(1, sizeof(*vf));
	pthread_rwlockattr_t a;

	if (!vf)
		return NULL;
	/* Writer-preferring: once a pause waits for the gate, new I/O queues behind
	 * it, so a busy file cannot starve a switch and the pause stays short. */
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&vf->gate, &a);
	pthread_rwlockattr_destroy(&a);
	pthread_mutex_init(&vf->hlock, NULL);
	pthread_mutex_init(&vf->idle_lock, NULL);
	pthread_cond_init(&vf->idle, NULL);
	vf->node = n;
	vf->store = ns->store;
	vf->io = ns->store->io;
	return vf;
}

static void vfile_free(struct vfile *vf)
{
	assert(!atomic_load(&vf->inflight));
	pthread_cond_destroy(&vf->idle);
	pthread_mutex_destroy(&vf->idle_lock);
	pthread_mutex_destroy(&vf->hlock);
	pthread_rwlock_destroy(&vf->gate);
	free(vf);
}

static struct vfile *ref(struct ns *ns, struct node *n, bool create)
{
	struct vfile *vf;

	lk_lock(&ns->nodes.lock, LK_NODES);
	if (!n->vf && create)
		n->vf = vfile_new(ns, n);
	vf = n->vf;
	if (vf)
		vf->refs++;
	lk_unlock(&ns->nodes.lock, LK_NODES);
	return vf;
}

struct vfile *vfile_get(struct ns *ns, struct node *n)
{
	return ref(ns, n, true);
}

void vfile_put(struct ns *ns, struct vfile *vf)
{
	struct node *n = vf->node;
	bool dead;

	lk_lock(&ns->nodes.lock, LK_NODES);
	dead = --vf->refs == 0;
	if (dead)
		n->vf = NULL;
	lk_unlock(&ns->nodes.lock, LK_NODES);
	if (!dead)
		return;
	assert(!vf->handles && !vf->route);
	vfile_free(vf);
	node_forget(&ns->nodes, n, 0);	/* frees n if the kernel forgot it meanwhile */
}

/* With the gate held shared: h joins vf's handles. */
static void add_handle(struct vfile *vf, struct vhandle *h)
{
	lk_lock(&vf->hlock, LK_HANDLES);
	h->next = vf->handles;
	vf->handles = h;
	vf->nhandles++;
	lk_unlock(&vf->hlock, LK_HANDLES);
}

static void remove_handle(struct vfile *vf, struct vhandle *h)
{
	lk_lock(&vf->hlock, LK_HANDLES);
	for (struct vhandle **pp = &vf->handles; *pp; pp = &(*pp)->next)
		if (*pp == h) {
			*pp = h->next;
			vf->nhandles--;
			break;
		}
	lk_unlock(&vf->hlock, LK_HANDLES);
}

static struct vhandle *new_handle(struct vfile *vf, int fd, int flags)
{
	struct vhandle *h = calloc(1, sizeof(*h));

	if (h) {
		h->vf = vf;
		h->fd = fd;
		h->flags = flags;
		h->direct = flags & O_DIRECT;
	}
	return h;
}

/* The gate is held shared across the open, so the route cannot change under it. */
int vfile_open(struct ns *ns, struct node *n, int flags, struct vhandle **out)
{
	bool trunc = flags & O_TRUNC;
	struct vfile *vf = vfile_get(ns, n);	/* the handle's reference */
	struct vhandle *h = NULL;
	char path[32];
	int fd, ret = 0;

	if (!vf)
		return -ENOMEM;
	flags = (flags & ~VFILE_STRIP) | O_CLOEXEC;
	lk_rdlock(&vf->gate, LK_GATE);
	fd_path(n->fd, path);
	fd = open(path, flags | (trunc && !vf->route ? O_TRUNC : 0));
	if (fd < 0)
		ret = -errno;
	else if (!(h = new_handle(vf, fd, flags)))
		ret = -ENOMEM;
	if (!ret && trunc && vf->route)
		ret = vf->route->truncate(vf->route_arg, 0);
	if (!ret)
		add_handle(vf, h);
	lk_rwunlock(&vf->gate, LK_GATE);
	if (ret) {
		if (fd >= 0)
			close(fd);
		free(h);
		vfile_put(ns, vf);
		return ret;
	}
	*out = h;
	return 0;
}

int vfile_attach(struct ns *ns, struct node *n, int fd, int flags, struct vhandle **out)
{
	struct vfile *vf = vfile_get(ns, n);
	struct vhandle *h = vf ? new_handle(vf, fd, (flags & ~VFILE_STRIP) | O_CLOEXEC) : NULL;

	if (!h) {
		if (vf)
			vfile_put(ns, vf);
		return -ENOMEM;
	}
	lk_rdlock(&vf->gate, LK_GATE);
	add_handle(vf, h);
	lk_rwunlock(&vf->gate, LK_GATE);
	*out = h;
	return 0;
}

void vfile_release(struct ns *ns, struct vhandle *h)
{
	struct vfile *vf = h->vf;

	lk_rdlock(&vf->gate, LK_GATE);
	remove_handle(vf, h);
	lk_rwunlock(&vf->gate, LK_GATE);
	close(h->fd);
	free(h);
	vfile_put(ns, vf);
}

/* --- I/O ------------------------------------------------------------------------- */

static inline void io_begin(struct vfile *vf)
{
	lk_rdlock(&vf->gate, LK_GATE);
}

/* Ends the request that io_begin began and returns the file's datastore, read
 * while the gate still keeps it from changing. */
static inline int io_end(struct vfile *vf)
{
	int ds = vf->node->ds;

	lk_rwunlock(&vf->gate, LK_GATE);
	return ds;
}

ssize_t vfile_read(struct vhandle *h, void *buf, size_t len, off_t off)
{
	struct vfile *vf = h->vf;
	uint64_t t0 = vds_now_ns(CLOCK_MONOTONIC);
	ssize_t n;

	io_begin(vf);
	if (vf->route)
		n = vf->route->read(vf->route_arg, buf, len, off);
	else if ((n = pread(h->fd, buf, len, off)) < 0)
		n = -errno;
	ds_io_note(&vf->io[io_end(vf)], DS_READ, n, t0);
	return n;
}

ssize_t vfile_write(struct vhandle *h, const void *buf, size_t len, off_t off)
{
	struct vfile *vf = h->vf;
	uint64_t t0 = vds_now_ns(CLOCK_MONOTONIC);
	ssize_t n;
	int ret;

	io_begin(vf);
	if (!vf->route) {
		n = pwrite_all(h->fd, buf, len, off);
	} else {
		n = vf->route->write(vf->route_arg, buf, len, off);
		if (n > 0 && (h->flags & O_DSYNC) && (ret = vf->route->flush(vf->route_arg, 1)))
			n = ret;
	}
	ds_io_note(&vf->io[io_end(vf)], DS_WRITE, n, t0);
	return n;
}

int vfile_fsync(struct vhandle *h, int datasync)
{
	struct vfile *vf = h->vf;
	uint64_t t0 = vds_now_ns(CLOCK_MONOTONIC);
	int ret;

	io_begin(vf);
	if (vf->route)
		ret = vf->route->flush(vf->route_arg, datasync);
	else
		ret = (datasync ? fdatasync(h->fd) : fsync(h->fd)) < 0 ? -errno : 0;
	ds_io_note(&vf->io[io_end(vf)], DS_FLUSH, ret, t0);
	return ret;
}

int vfile_fallocate(struct vhandle *h, int mode, off_t off, off_t len)
{
	struct vfile *vf = h->vf;
	int ret;

	io_begin(vf);
	if (vf->route)
		ret = vf->route->fallocate(vf->route_arg, mode, off, len);
	else if (mode & FALLOC_FL_ZERO_RANGE)	/* where it may not zero: datastore.h */
		ret = ds_zero_range(&vf->store->ds[vf->node->ds], h->fd, mode, off, len);
	else
		ret = fallocate(h->fd, mode, off, len) < 0 ? -errno : 0;
	io_end(vf);
	return ret;
}

off_t vfile_lseek(struct vhandle *h, off_t off, int whence)
{
	struct vfile *vf = h->vf;
	off_t res;

	io_begin(vf);
	if (vf->route)
		res = vf->route->lseek(vf->route_arg, off, whence);
	else if ((res = lseek(h->fd, off, whence)) < 0)
		res = -errno;
	io_end(vf);
	return res;
}

/* --- asynchronous passthrough I/O ------------------------------------------------ */

int vfile_async_begin(struct vhandle *h, struct vasync *a)
{
	struct vfile *vf = h->vf;
	int fd = -EXDEV;

	a->t0 = vds_now_ns(CLOCK_MONOTONIC);
	io_begin(vf);
	if (!vf->route) {
		atomic_fetch_add(&vf->inflight, 1);
		fd = h->fd;
	}
	/* A switch pauses the file and waits for inflight to drain before it changes
	 * the node's datastore, so this stays the I/O's datastore until its end. */
	a->ds = io_end(vf);
	return fd;
}

/* seq_cst on both sides: either this sees drain_wait set, or the pause sees the
 * count this just lowered (wait_drained). */
void vfile_async_end(struct vfile *vf, const struct vasync *a, bool write, ssize_t res)
{
	ds_io_note(&vf->io[a->ds], write ? DS_WRITE : DS_READ, res, a->t0);
	if (atomic_fetch_sub(&vf->inflight, 1) != 1 || !atomic_load(&vf->drain_wait))
		return;
	lk_lock(&vf->idle_lock, LK_LEAF);
	pthread_cond_broadcast(&vf->idle);
	lk_unlock(&vf->idle_lock, LK_LEAF);
}

/* With the gate exclusive, no I/O starts: wait for the started ones to end. */
static void wait_drained(struct vfile *vf)
{
	if (!atomic_load(&vf->inflight))
		return;
	lk_lock(&vf->idle_lock, LK_LEAF);
	atomic_store(&vf->drain_wait, true);
	while (atomic_load(&vf->inflight))
		lk_wait(&vf->idle, &vf->idle_lock);
	atomic_store(&vf->drain_wait, false);
	lk_unlock(&vf->idle_lock, LK_LEAF);
}

/* --- metadata calls by node ------------------------------------------------------ */

struct vfile *vfile_hold(struct ns *ns, struct node *n)
{
	struct vfile *vf = ref(ns, n, false);

	if (vf)
		io_begin(vf);
	return vf;
}

void vfile_unhold(struct ns *ns, struct vfile *vf)
{
	if (!vf)
		return;
	io_end(vf);
	vfile_put(ns, vf);
}

int vfile_truncate(struct vfile *vf, struct vhandle *h, struct node *n, off_t size)
{
	char path[32];

	if (vf && vf->route)
		return vf->route->truncate(vf->route_arg, size);
	if (h)
		return ftruncate(h->fd, size) < 0 ? -errno : 0;
	fd_path(n->fd, path);
	return truncate(path, size) < 0 ? -errno : 0;
}

bool vfile_routed(const struct vfile *vf)
{
	return vf && vf->route;
}

void vfile_fix_stat(struct vfile *vf, struct stat *st)
{
	if (vf->route)
		vf->route->fix_stat(vf->route_arg, st);
}

/* --- the route's owner ------------------------------------------------------------- */

void vfile_pause(struct vfile *vf)
{
	lk_wrlock(&vf->gate, LK_GATE);
	wait_drained(vf);
	vf->paused = true;
}

void vfile_resume(struct vfile *vf)
{
	assert(vf->paused);
	vf->paused = false;
	lk_rwunlock(&vf->gate, LK_GATE);
}

void vfile_set_route(struct vfile *vf, const struct vroute *r, void *arg)
{
	assert(vf->paused && lk_held(LK_GATE));
	vf->route = r;
	vf->route_arg = arg;
}

void vfile_drop_route(struct vfile *vf)
{
	vf->route = NULL;
	vf->route_arg = NULL;
}

int vfile_rebind_prepare(struct vfile *vf, int new_fd, struct vfile_rebind *rb)
{
	char p[32];
	size_t i = 0;

	assert(vf->paused && lk_held(LK_GATE));	/* no handle comes or goes */
	rb->n = 0;
	rb->err = 0;
	rb->failed_at = 0;
	rb->fds = malloc((vf->nhandles ? vf->nhandles : 1) * sizeof(*rb->fds));
	if (!rb->fds)
		return rb->err = -ENOMEM;
	fd_path(new_fd, p);
	for (struct vhandle *h = vf->handles; h; h = h->next, i++) {
		int fd = open(p, h->flags);

		if (fd < 0) {
			rb->err = -errno;
			rb->failed_at = i;
			return rb->err;
		}
		rb->fds[rb->n++] = fd;
	}
	assert(rb->n == vf->nhandles);
	return 0;
}

void vfile_rebind_commit(struct ns *ns, struct vfile *vf, struct vfile_rebind *rb, int ds,
			 int opath_fd, const struct stat *st, int *old_opath)
{
	size_t i = 0;

	assert(vf->paused && lk_held(LK_GATE) && !rb->err && rb->n == vf->nhandles);
	*old_opath = node_rebind_file(&ns->nodes, vf->node, ds, opath_fd, st);
	for (struct vhandle *h = vf->handles; h; h = h->next, i++) {
		int old = h->fd;

		h->fd = rb->fds[i];
		rb->fds[i] = old;	/* h->flags and h->direct stay */
	}
}

void vfile_rebind_done(struct vfile_rebind *rb)
{
	for (size_t i = 0; i < rb->n; i++)
		close(rb->fds[i]);
	free(rb->fds);
	rb->fds = NULL;
	rb->n = 0;
}

/* --- teardown --------------------------------------------------------------------- */

static void teardown_one(struct node *n, void *arg)
{
	struct vfile *vf = n->vf;

	(void)arg;
	if (!vf)
		return;
	for (struct vhandle *h = vf->handles, *next; h; h = next) {
		next = h->next;
		close(h->fd);
		free(h);
	}
	vfile_free(vf);
	n->vf = NULL;
}

void vfile_teardown_all(struct ns *ns)
{
	node_for_each_file(&ns->nodes, teardown_one, NULL);
}
