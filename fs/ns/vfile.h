/* vfile.h - open files, and the one place their I/O is routed.
 *
 * Every open of a regular file goes through one struct vfile per node, shared by
 * all of its handles. A file's I/O either goes straight to each handle's backing fd
 * ("passthrough"), or, while another layer owns the file's *route* (a migration:
 * mig/), to that layer's callbacks. Every I/O call of the FUSE layer is one call
 * here (vfile_read, vfile_write, ...), whichever way the file is routed.
 *
 * The gate. vf->gate (LK_GATE, fs/lock/lock.h) is held shared by every read,
 * write, flush, fallocate, lseek and truncate for the duration of the backing call,
 * by opens and releases of handles, and by metadata calls that need the node's
 * backing fd stable (vfile_hold). The route's owner takes it exclusive
 * (vfile_pause) to change the route or the backing file, so that it waits for
 * in-flight I/O and no request ever sees half a change. It is writer-preferring:
 * once a pause waits, new requests queue behind it, so a busy file cannot starve a
 * switch. While paused, no handle comes or goes, which is what lets a switch reopen
 * every handle on a new backing and swap them all at once (vfile_rebind_*).
 *
 * Asynchronous I/O. A passthrough read or write may be handed to io_uring by one
 * thread and completed by another (vfile_async_begin/end). It cannot hold the gate
 * across threads (a lock belongs to the thread that took it), so it takes the gate
 * shared only to start, counts itself in vf->inflight while it runs, and
 * vfile_pause, once it holds the gate exclusive (so no I/O can start), also waits
 * for that count to drain. A pause therefore waits for every I/O of the file, sync
 * or async, exactly as before.
 *
 * Lifetime: a vfile lives while it has a handle or someone holds a reference
 * (vfile_get); its count and node->vf are guarded by the node table's lock
 * (LK_NODES), and while it lives its node lives. vf->handles has its own lock
 * (LK_HANDLES), taken under the gate.
 */
#ifndef VDS_VFILE_H
#define VDS_VFILE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

struct ds_iostat;
struct ns;
struct node;

/* A route: where a file's I/O goes instead of its handles' fds. Every callback is
 * called with the gate held shared and gets the arg given to vfile_set_route.
 * Errors are -errno. */
struct vroute {
	ssize_t (*read)(void *arg, void *buf, size_t len, off_t off);
	ssize_t (*write)(void *arg, const void *buf, size_t len, off_t off);
	int (*flush)(void *arg, int datasync);
	int (*fallocate)(void *arg, int mode, off_t off, off_t len);
	off_t (*lseek)(void *arg, off_t off, int whence);
	int (*truncate)(void *arg, off_t size);
	/* What stat shows of a routed file: size and times as the route has them. */
	void (*fix_stat)(void *arg, struct stat *st);
};

struct vhandle {
	struct vfile *vf;
	struct vhandle *next;	/* vf->handles, guarded by vf->hlock */
	int fd;			/* backing fd, opened with the opener's flags */
	int flags;		/* those flags, without O_CREAT/O_EXCL/O_TRUNC/O_APPEND */
	bool direct;		/* opened O_DIRECT: buffers must be aligned */
};

struct vfile {
	pthread_rwlock_t gate;		/* see above */
	bool paused;			/* gate held exclusive by vfile_pause */
	struct node *node;
	const struct store *store;	/* the node's datastore is store->ds[node->ds] */
	pthread_mutex_t hlock;		/* LK_HANDLES: handles, nhandles */
	struct vhandle *handles;
	size_t nhandles;
	unsigned refs;			/* handles + other holders; node table lock */
	/* NULL: passthrough. Written only while paused, read under the gate. */
	const struct vroute *route;
	void *route_arg;
	struct ds_iostat *io;		/* the store's, one per datastore (iostat.h) */
	/* Asynchronous I/O started (under the gate) and not yet ended; a pause waits
	 * for 0 on idle, under idle_lock (LK_LEAF), with drain_wait set so that the
	 * last I/O to end knows to wake it. */
	atomic_uint inflight;
	atomic_bool drain_wait;
	pthread_mutex_t idle_lock;
	pthread_cond_t idle;
};

/* --- handles (the FUSE layer's open, create, release) ---------------------------- */

/* Open a handle on file node n with the opener's flags. O_TRUNC is carried out
 * here: by the backing open for a passthrough file (which sets mtime and ctime as
 * the backing filesystem does), through the route's truncate for a routed one. */
int vfile_open(struct ns *ns, struct node *n, int flags, struct vhandle **out);
/* A handle on an fd the caller just created the file with (takes fd). */
int vfile_attach(struct ns *ns, struct node *n, int fd, int flags, struct vhandle **out);
/* Close the handle (and free the vfile if it was the last holder). */
void vfile_release(struct ns *ns, struct vhandle *h);

/* --- I/O: passthrough or the route, one call each -------------------------------- */

/* Reads, writes and flushes are counted on the file's datastore (store/iostat.h). */
ssize_t vfile_read(struct vhandle *h, void *buf, size_t len, off_t off);
/* Writes all of buf or fails. A routed write through a handle opened O_DSYNC or
 * O_SYNC is flushed before it returns: the kernel sends no FSYNC after a
 * FOPEN_DIRECT_IO write, and the handle was promised durable writes. */
ssize_t vfile_write(struct vhandle *h, const void *buf, size_t len, off_t off);
int vfile_fsync(struct vhandle *h, int datasync);
int vfile_fallocate(struct vhandle *h, int mode, off_t off, off_t len);
/* SEEK_DATA / SEEK_HOLE (and the rest): the offset, or -errno. */
off_t vfile_lseek(struct vhandle *h, off_t off, int whence);

/* --- asynchronous passthrough I/O ------------------------------------------------ */

/* Start one read or write of h that the caller carries out itself on the backing fd,
 * asynchronously, completing in any thread. If h's file is passthrough: the I/O is
 * counted in flight (a pause waits for it), and h's backing fd is returned, valid
 * until vfile_async_end. If the file is routed: -EXDEV, nothing is counted, and the
 * caller uses vfile_read / vfile_write instead. Takes the gate shared for an instant
 * (so it waits out a pause), and never across the I/O. The caller keeps the
 * semantics vfile_write documents: all of buf or an error; an O_DSYNC handle's fd
 * was opened O_DSYNC, so its writes are durable on completion. */
struct vasync {
	uint64_t t0;	/* CLOCK_MONOTONIC at begin: the request's latency runs from here */
	int ds;		/* the file's datastore, fixed while the I/O is in flight */
};
int vfile_async_begin(struct vhandle *h, struct vasync *a);
/* The I/O started by vfile_async_begin is over with res (bytes or -errno): counted
 * in the datastore's iostat as vfile_read/vfile_write count theirs. Call before
 * replying for it. */
void vfile_async_end(struct vfile *vf, const struct vasync *a, bool write, ssize_t res);

/* --- metadata calls by node ---------------------------------------------------- */

/* The file's vfile with its gate held shared, so its route and node->fd stay as
 * they are until vfile_unhold; NULL (nothing held) if the file is not open. */
struct vfile *vfile_hold(struct ns *ns, struct node *n);
void vfile_unhold(struct ns *ns, struct vfile *vf);
/* Resize a file (setattr): through its route, else through h's fd if given, else
 * through the node's O_PATH fd. vf is from vfile_hold (may be NULL). */
int vfile_truncate(struct vfile *vf, struct vhandle *h, struct node *n, off_t size);
/* With vf held: true while another layer owns the file's route. */
bool vfile_routed(const struct vfile *vf);
/* With vf held: fix up st (the backing file's) as the route says it reads. */
void vfile_fix_stat(struct vfile *vf, struct stat *st);

/* --- for the owner of a route ----------------------------------------------------- */

/* A reference that keeps the vfile (and its node) alive, created if need be. */
struct vfile *vfile_get(struct ns *ns, struct node *n);
void vfile_put(struct ns *ns, struct vfile *vf);
/* Take the gate exclusive: in-flight I/O, sync and async, has ended and none starts
 * until resume. */
void vfile_pause(struct vfile *vf);
void vfile_resume(struct vfile *vf);
/* While paused: route the file through r (NULL: passthrough again). */
void vfile_set_route(struct vfile *vf, const struct vroute *r, void *arg);
/* Shutdown only (no thread does I/O any more): passthrough, without the gate. */
void vfile_drop_route(struct vfile *vf);

/* Moving a file's handles to another backing file, all or none. */
struct vfile_rebind {
	size_t n;		/* handles, and fds in fds[] */
	int *fds;		/* one new fd per handle, in list order; the old ones after commit */
	int err;		/* why prepare failed */
	size_t failed_at;	/* the handle that could not be reopened */
};
/* While paused: open, for every handle, the file new_fd names with the handle's
 * flags. 0, or -errno with rb->err and rb->failed_at saying which (nothing moved). */
int vfile_rebind_prepare(struct vfile *vf, int new_fd, struct vfile_rebind *rb);
/* While paused, after a successful prepare: every handle gets its new fd, and the
 * node its new backing (node_rebind_file); cannot fail. rb then holds the old fds,
 * *old_opath the node's old O_PATH fd: close them with vfile_rebind_done after
 * resume. */
void vfile_rebind_commit(struct ns *ns, struct vfile *vf, struct vfile_rebind *rb, int ds,
			 int opath_fd, const struct stat *st, int *old_opath);
/* Close what rb holds (new fds after a failure, old ones after a commit). */
void vfile_rebind_done(struct vfile_rebind *rb);

/* Daemon teardown: close every handle still open (the kernel sends no release
 * after an unmount) and free every vfile. No other thread may run. */
void vfile_teardown_all(struct ns *ns);

#endif
