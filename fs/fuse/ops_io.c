/* ops_io.c - open files: open, create, read, write, fsync, fallocate, lseek, release.
 *
 * The I/O path does no path walk and no allocation: the handle (fi->fh) carries the
 * backing fd, reads land in the request's own buffer (loop.h), and each request is
 * one vfile call, which routes it (vfile.h: passthrough, or a migration's route).
 *
 * Reads and writes of a passthrough file are asynchronous: the worker hands them to
 * io_uring (aio.h) with the request kept (loop_req_keep: a WRITE's payload stays in
 * its buffer, a READ's data lands in it) and goes on with the next request; the
 * reply is sent from the aio completion thread. So the backing file sees as many
 * requests at once as the guest issues, not one per worker. A routed file's I/O
 * (a migration's overlay), an O_NONBLOCK handle (io_uring would answer EAGAIN where
 * pread waits) and a misaligned O_DIRECT payload stay synchronous.
 *
 * Opens with O_DIRECT keep their meaning end to end: the backing fd is opened
 * O_DIRECT too, and the kernel is told FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES
 * so that concurrent direct writes to one image are not serialised on the inode
 * lock. libfuse 3.14 has no field for the latter, so the open reply is built here.
 * Buffered opens get FOPEN_KEEP_CACHE: the page cache stays valid across opens
 * because no one but this daemon writes the backing files.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "aio.h"
#include "beneath.h"
#include "iobuf.h"
#include "loop.h"
#include "vfile.h"
#include "vfs.h"
#include "wrate.h"

static inline struct vhandle *fh_of(struct fuse_file_info *fi)
{
	return (struct vhandle *)(uintptr_t)fi->fh;
}

static uint32_t open_flags_for(int flags)
{
	if (flags & O_DIRECT)
		return FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES;
	return FOPEN_KEEP_CACHE;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct vfs *v = req_vfs(req);
	struct node *n = req_node(req, ino);
	struct fuse_open_out out;
	struct iovec iov = { &out, sizeof(out) };
	struct vhandle *h;
	int ret;

	if (n->is_dir) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	ret = vfile_open(v->ns, n, fi->flags, &h);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	memset(&out, 0, sizeof(out));
	out.fh = (uintptr_t)h;
	out.open_flags = open_flags_for(fi->flags);
	if (fuse_reply_iov(req, &iov, 1))
		vfile_release(v->ns, h);	/* the opener was interrupted: nobody holds h */
}

/* Create parent/name as a new file on the datastore placement picks; returns the
 * backing fd, or 0 with *existing set when the name exists after all. The kernel
 * sends CREATE only for a name it believes absent and holds the parent's lock
 * while it does, so an existing name means someone changed a datastore behind the
 * mount: it is opened like any existing file (vfile_open), never by path, so that a
 * migrating file's O_TRUNC still goes through its overlay. */
static int create_backing(fuse_req_t req, struct node *p, const char *name, mode_t mode,
			  int flags, bool *existing)
{
	struct vfs *v = req_vfs(req);
	char path[PATH_MAX], ppath[PATH_MAX];
	struct stat pst;
	int ds, fd, ret;

	*existing = false;
	ret = node_child_path(&v->ns->nodes, p, name, path, sizeof(path));
	if (!ret)
		ret = node_dir_path(&v->ns->nodes, p, ppath, sizeof(ppath));
	if (ret)
		return ret;
	ds = ns_find(v->ns, path, &pst);
	if (ds >= 0) {
		*existing = true;
		return flags & O_EXCL ? -EEXIST : 0;
	}
	ds = store_pick(v->store);
	if (ds < 0)
		return ds;
	ret = ns_mkpath(v->ns, ds, ppath);
	if (ret)
		return ret;
	bn_fstatat(v->store->ds[ds].fd, ppath, &pst, 0);
	fd = bn_open(v->store->ds[ds].fd, path, (flags & ~(O_APPEND | O_TRUNC)) | O_CREAT | O_EXCL |
		     O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	vfs_set_owner(v, req, ds, path, &pst);
	ns_dir_changed(v->ns, VDS_DS_BIT(ds), ppath);
	return fd;
}

/* The name exists: open it as op_open would, and give the kernel its entry. */
static int create_open_existing(struct vfs *v, struct node *p, const char *name, int flags,
				struct fuse_entry_param *e, struct vhandle **h)
{
	int ret = vfs_entry(v, p, name, e);
	struct node *n;

	if (ret)
		return ret;
	n = node_of(&v->ns->nodes, e->ino);
	if (S_ISDIR(e->attr.st_mode))
		ret = -EISDIR;
	else if (!S_ISREG(e->attr.st_mode))
		ret = -EEXIST;	/* a symlink or special file put there behind our back */
	else
		ret = vfile_open(v->ns, n, flags & ~(O_CREAT | O_EXCL), h);
	if (ret)
		node_forget(&v->ns->nodes, n, 1);
	return ret;
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct vfs *v = req_vfs(req);
	struct node *p = req_node(req, parent);
	struct fuse_entry_param e;
	struct vhandle *h;
	bool existing;
	int fd, ret;

	if (ns_name_hidden(v->ns, p, name)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	ns_lock_shared(v->ns);
	fd = create_backing(req, p, name, mode, fi->flags, &existing);
	ns_unlock(v->ns);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	if (existing) {
		ret = create_open_existing(v, p, name, fi->flags, &e, &h);
	} else {
		ret = vfs_entry(v, p, name, &e);
		if (!ret && (ret = vfile_attach(v->ns, node_of(&v->ns->nodes, e.ino), fd,
						(fi->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_APPEND)),
						&h)))
			node_forget(&v->ns->nodes, node_of(&v->ns->nodes, e.ino), 1);
		if (ret)
			close(fd);
	}
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	fi->fh = (uintptr_t)h;
	fi->direct_io = !!(fi->flags & O_DIRECT);
	fi->keep_cache = !fi->direct_io;
	if (fuse_reply_create(req, &e, fi))
		vfile_release(v->ns, h);
}

/* One asynchronous read or write, in the scratch space of its kept request. */
struct io_async {
	struct aio_op op;
	fuse_req_t req;
	struct vhandle *h;
	struct loop_req *lr;
	struct vasync va;
};
_Static_assert(sizeof(struct io_async) <= LOOP_REQ_SCRATCH, "struct io_async in a request");

/* On the aio completion thread. The I/O ends (for a pause) before the reply, while
 * the kernel still holds the file open. */
static void io_done(struct aio_op *op, ssize_t n)
{
	struct io_async *io = (struct io_async *)((char *)op - offsetof(struct io_async, op));
	struct loop_req *lr = io->lr;

	vfile_async_end(io->h->vf, &io->va, op->write, n);
	if (op->write && n > 0)
		wrate_note(&io->h->vf->node->wrate, (size_t)n);
	loop_req_resume(lr);
	if (n < 0)
		fuse_reply_err(io->req, (int)-n);
	else if (op->write)
		fuse_reply_write(io->req, (size_t)n);
	else
		fuse_reply_buf(io->req, op->buf, (size_t)n);
	loop_req_done(lr);
}

/* Hand the I/O to io_uring if h's file is passthrough: true if so (the reply will
 * come from io_done), false if the caller must do it synchronously. */
static bool io_start(fuse_req_t req, struct loop_req *lr, struct vhandle *h, bool write,
		     void *buf, size_t size, off_t off)
{
	struct io_async *io;
	struct vasync va;
	int fd;

	if (!lr || !loop_req_async(lr) || (h->flags & O_NONBLOCK) ||
	    (fd = vfile_async_begin(h, &va)) < 0)
		return false;
	io = loop_req_scratch(lr);
	*io = (struct io_async){
		.op = { .done = io_done, .fd = fd, .write = write, .buf = buf, .len = size,
			.off = off },
		.req = req, .h = h, .lr = lr, .va = va,
	};
	loop_req_keep(lr);
	aio_submit(loop_req_aio(lr), &io->op);
	return true;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct loop_req *lr = loop_req_current();
	struct vhandle *h = fh_of(fi);
	void *buf = lr ? loop_req_data(lr) : iobuf_get();
	ssize_t n;

	(void)ino;
	if (!buf || size > VDS_IO_MAX) {
		fuse_reply_err(req, buf ? EINVAL : ENOMEM);
		return;
	}
	if (io_start(req, lr, h, false, buf, size, off))
		return;
	if (lr)
		aio_count_sync(loop_req_aio(lr), true);
	n = vfile_read(h, buf, size, off);
	if (lr)
		aio_count_sync(loop_req_aio(lr), false);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
		     off_t off, struct fuse_file_info *fi)
{
	struct loop_req *lr = loop_req_current();
	struct aio *a = lr ? loop_req_aio(lr) : NULL;
	struct vhandle *h = fh_of(fi);
	ssize_t n;

	(void)ino;
	if (h->direct && !iobuf_aligned(buf, 0, 0)) {
		char *bounce = iobuf_get();

		if (!bounce || size > VDS_IO_MAX) {
			fuse_reply_err(req, bounce ? EINVAL : ENOMEM);
			return;
		}
		memcpy(bounce, buf, size);
		buf = bounce;
		lr = NULL;	/* the bounce buffer is this worker's: stay synchronous */
	}
	if (io_start(req, lr, h, true, (void *)buf, size, off))
		return;
	if (a)
		aio_count_sync(a, true);
	n = vfile_write(h, buf, size, off);
	if (a)
		aio_count_sync(a, false);
	if (n > 0)
		wrate_note(&h->vf->node->wrate, (size_t)n);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	fuse_reply_err(req, -vfile_fsync(fh_of(fi), datasync));
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	vfile_release(req_vfs(req)->ns, fh_of(fi));
	fuse_reply_err(req, 0);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	(void)ino;
	fuse_reply_err(req, -vfile_fallocate(fh_of(fi), mode, off, len));
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	off_t res = vfile_lseek(fh_of(fi), off, whence);

	(void)ino;
	if (res < 0)
		fuse_reply_err(req, (int)-res);
	else
		fuse_reply_lseek(req, res);
}

void vds_ops_io(struct fuse_lowlevel_ops *ops)
{
	ops->open = op_open;
	ops->create = op_create;
	ops->read = op_read;
	ops->write = op_write;
	ops->flush = op_flush;
	ops->fsync = op_fsync;
	ops->release = op_release;
	ops->fallocate = op_fallocate;
	ops->lseek = op_lseek;
}
