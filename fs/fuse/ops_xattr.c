/* ops_xattr.c - extended attributes.
 *
 * Files: through /proc/self/fd/N of the node's O_PATH fd (the *xattr calls accept no
 * O_PATH fd). Directories: read from the first copy, written to every copy, so the
 * union directory carries one set of attributes whichever copy is consulted.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "beneath.h"
#include "paths.h"
#include "vfs.h"
#include "vfile.h"

struct xtarget {
	char path[PATH_MAX];	/* /proc path (file) or relative path (dir) */
	bool dir;
};

static int xtarget_of(struct vfs *v, struct node *n, struct xtarget *t)
{
	t->dir = n->is_dir;
	if (!n->is_dir) {
		fd_path(n->fd, t->path);
		return 0;
	}
	return node_dir_path(&v->ns->nodes, n, t->path, sizeof(t->path));
}

/* Paths of directory copies are resolved relative to each datastore via
 * /proc/self/fd/<dsfd>/<path>, keeping every call inside the datastore. */
static int ds_copy_path(struct vfs *v, int ds, const char *rel, char *out, size_t len)
{
	int n = snprintf(out, len, "/proc/self/fd/%d/%s", v->store->ds[ds].fd, rel);

	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

static void reply_size_or_data(fuse_req_t req, ssize_t n, size_t size, const char *buf)
{
	if (n < 0)
		fuse_reply_err(req, errno);
	else if (size == 0)
		fuse_reply_xattr(req, n);
	else
		fuse_reply_buf(req, buf, n);
}

/* First existing copy, as a path the *xattr calls take. */
static int xread_path(struct vfs *v, struct node *n, char *out, size_t len)
{
	struct xtarget t;
	struct stat st;
	int ret = xtarget_of(v, n, &t), ds;

	if (ret)
		return ret;
	if (!t.dir) {
		snprintf(out, len, "%s", t.path);
		return 0;
	}
	ds = ns_find(v->ns, t.path, &st);
	return ds < 0 ? ds : ds_copy_path(v, ds, t.path, out, len);
}

/* getxattr (name set) or listxattr (name NULL): size 0 asks for the length. */
static void xread(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct vfs *v = req_vfs(req);
	struct vfile *vf = vfile_hold(req_vfs(req)->ns, req_node(req, ino));
	char path[PATH_MAX + 64];
	char *buf = size ? malloc(size) : NULL;
	int ret = (size && !buf) ? -ENOMEM : xread_path(v, req_node(req, ino), path, sizeof(path));

	if (ret)
		fuse_reply_err(req, -ret);
	else
		reply_size_or_data(req, name ? getxattr(path, name, buf, size)
					     : listxattr(path, buf, size), size, buf);
	free(buf);
	vfile_unhold(v->ns, vf);	/* req is gone once replied to */
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	xread(req, ino, name, size);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	xread(req, ino, NULL, size);
}

/* Apply fn to the file, or to every copy of the directory. */
static int xwrite_each(struct vfs *v, struct node *n, int (*fn)(const char *, void *),
		       void *arg)
{
	char path[PATH_MAX + 64];
	struct xtarget t;
	struct stat st;
	int ret = xtarget_of(v, n, &t), found = 0;

	if (ret || !t.dir)
		return ret ? ret : fn(t.path, arg);
	for (int i = 0; !ret && i < v->store->nds; i++) {
		if (!store_live(v->store, i) ||
		    bn_fstatat(v->store->ds[i].fd, t.path, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		found++;
		ret = ds_copy_path(v, i, t.path, path, sizeof(path));
		if (!ret)
			ret = fn(path, arg);
	}
	return ret ? ret : found ? 0 : -ENOENT;
}

struct xset {
	const char *name;
	const char *value;
	size_t size;
	int flags;
};

static int do_setxattr(const char *path, void *arg)
{
	struct xset *x = arg;

	return setxattr(path, x->name, x->value, x->size, x->flags) < 0 ? -errno : 0;
}

static int do_removexattr(const char *path, void *arg)
{
	return removexattr(path, arg) < 0 ? -errno : 0;
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	struct xset x = { name, value, size, flags };
	struct vfile *vf = vfile_hold(req_vfs(req)->ns, req_node(req, ino));
	int ret = xwrite_each(req_vfs(req), req_node(req, ino), do_setxattr, &x);

	vfile_unhold(req_vfs(req)->ns, vf);
	fuse_reply_err(req, -ret);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct vfile *vf = vfile_hold(req_vfs(req)->ns, req_node(req, ino));
	int ret = xwrite_each(req_vfs(req), req_node(req, ino), do_removexattr, (void *)name);

	vfile_unhold(req_vfs(req)->ns, vf);
	fuse_reply_err(req, -ret);
}

void vds_ops_xattr(struct fuse_lowlevel_ops *ops)
{
	ops->getxattr = op_getxattr;
	ops->listxattr = op_listxattr;
	ops->setxattr = op_setxattr;
	ops->removexattr = op_removexattr;
}
