/* ops_attr.c - lookup, forget, getattr, setattr, readlink.
 *
 * Files are reached through their node's O_PATH fd, never by path; directories
 * through their path on every datastore that has a copy (an attribute change applies
 * to all copies so the union stays one directory).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "paths.h"
#include "vfile.h"
#include "vfs.h"

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int ret = vfs_entry(req_vfs(req), req_node(req, parent), name, &e);

	if (ret == -ENOENT) {
		/* A negative entry the kernel may cache: every change goes through us. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = req_vfs(req)->timeout;
		fuse_reply_entry(req, &e);
	} else if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_entry(req, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	node_forget(&req_vfs(req)->ns->nodes, req_node(req, ino), nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	for (size_t i = 0; i < count; i++)
		node_forget(&req_vfs(req)->ns->nodes, req_node(req, f[i].ino), f[i].nlookup);
	fuse_reply_none(req);
}

static void reply_attr(fuse_req_t req, struct node *n)
{
	struct stat st;
	int ret = ns_stat_node(req_vfs(req)->ns, n, &st);

	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, req_vfs(req)->timeout);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	reply_attr(req, req_node(req, ino));
}

static void times_of(const struct stat *attr, int to_set, struct timespec ts[2])
{
	ts[0].tv_nsec = ts[1].tv_nsec = UTIME_OMIT;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		ts[0] = attr->st_atim;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		ts[1] = attr->st_mtim;
}

#define SET_TIMES (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW | \
		   FUSE_SET_ATTR_MTIME_NOW)

static int setattr_file(struct vfile *vf, struct node *n, struct stat *attr, int to_set,
			struct fuse_file_info *fi)
{
	uid_t uid = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
	gid_t gid = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
	struct vhandle *h = fi ? (struct vhandle *)(uintptr_t)fi->fh : NULL;
	struct timespec ts[2];
	char path[32];
	int ret = 0;

	fd_path(n->fd, path);
	if ((to_set & FUSE_SET_ATTR_MODE) && chmod(path, attr->st_mode & 07777) < 0)
		return -errno;
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) &&
	    fchownat(n->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		/* A routed (migrating) file is resized through its route, whether or
		 * not the caller has it open. */
		ret = vfile_truncate(vf, h, n, attr->st_size);
		if (ret)
			return ret;
	}
	if (to_set & SET_TIMES) {
		times_of(attr, to_set, ts);
		if (utimensat(AT_FDCWD, path, ts, 0) < 0)
			return -errno;
	}
	return 0;
}

static int setattr_dir_copy(int dfd, const char *path, struct stat *attr, int to_set)
{
	uid_t uid = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
	gid_t gid = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
	struct timespec ts[2];

	if ((to_set & FUSE_SET_ATTR_MODE) && bn_fchmodat(dfd, path, attr->st_mode & 07777) < 0)
		return -errno;
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) &&
	    bn_fchownat(dfd, path, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (to_set & SET_TIMES) {
		times_of(attr, to_set, ts);
		if (bn_utimensat(dfd, path, ts, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	return 0;
}

static int setattr_dir(struct vfs *v, struct node *n, struct stat *attr, int to_set)
{
	char path[PATH_MAX];
	struct stat st;
	int ret, found = 0;

	if (to_set & FUSE_SET_ATTR_SIZE)
		return -EISDIR;
	ret = node_dir_path(&v->ns->nodes, n, path, sizeof(path));
	for (int i = 0; !ret && i < v->store->nds; i++) {
		if (!store_live(v->store, i) ||
		    bn_fstatat(v->store->ds[i].fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		found++;
		ret = setattr_dir_copy(v->store->ds[i].fd, path, attr, to_set);
	}
	return ret ? ret : found ? 0 : -ENOENT;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct node *n = req_node(req, ino);
	struct vfile *vf;
	int ret;

	if (n->is_dir) {
		ret = setattr_dir(req_vfs(req), n, attr, to_set);
	} else {
		vf = vfile_hold(req_vfs(req)->ns, n);
		ret = setattr_file(vf, n, attr, to_set, fi);
		vfile_unhold(req_vfs(req)->ns, vf);
	}
	if (ret)
		fuse_reply_err(req, -ret);
	else
		reply_attr(req, n);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct node *n = req_node(req, ino);
	char buf[PATH_MAX + 1];
	ssize_t len;

	if (n->is_dir) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	len = readlinkat(n->fd, "", buf, sizeof(buf) - 1);
	if (len < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	buf[len] = 0;
	fuse_reply_readlink(req, buf);
}

void vds_ops_attr(struct fuse_lowlevel_ops *ops)
{
	ops->lookup = op_lookup;
	ops->forget = op_forget;
	ops->forget_multi = op_forget_multi;
	ops->getattr = op_getattr;
	ops->setattr = op_setattr;
	ops->readlink = op_readlink;
}
