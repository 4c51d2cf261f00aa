/* ops_names.c - operations that add, remove or move names.
 *
 * New names: refuse if the name exists on any datastore (a union must never show two
 * objects under one name), pick a datastore by policy, create the parent path there,
 * create the object, give it to the caller, reply with a fresh entry.
 * rename: a file moves inside its own datastore (the target directory is created
 * there if it only existed elsewhere, so users never see EXDEV); a directory moves on
 * every datastore that has a copy. A replaced target on another datastore is removed
 * after the move, so at no moment does the name resolve to nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "mig.h"
#include "paths.h"
#include "vfile.h"
#include "vfs.h"

struct newname {
	char path[PATH_MAX];
	char parent_path[PATH_MAX];
	struct stat parent_st;
	int ds;
};

/* Everything that precedes the creation of parent/name on some datastore. */
static int newname_prepare(struct vfs *v, struct node *parent, const char *name, int ds,
			   struct newname *nn)
{
	struct stat st;
	int ret;

	if (ns_name_hidden(v->ns, parent, name))
		return -EPERM;
	ret = node_dir_path(&v->ns->nodes, parent, nn->parent_path, sizeof(nn->parent_path));
	if (!ret)
		ret = node_child_path(&v->ns->nodes, parent, name, nn->path, sizeof(nn->path));
	if (ret)
		return ret;
	ret = ns_find(v->ns, nn->path, &st);
	if (ret >= 0)
		return -EEXIST;
	if (ret != -ENOENT)
		return ret;
	nn->ds = ds >= 0 ? ds : store_pick(v->store);
	if (nn->ds < 0)
		return nn->ds;
	ret = ns_mkpath(v->ns, nn->ds, nn->parent_path);
	if (!ret && bn_fstatat(v->store->ds[nn->ds].fd, nn->parent_path, &nn->parent_st, 0) < 0)
		ret = -errno;
	return ret;
}

static void reply_new(fuse_req_t req, struct node *parent, const char *name, int ret)
{
	struct fuse_entry_param e;

	if (!ret)
		ret = vfs_entry(req_vfs(req), parent, name, &e);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_entry(req, &e);
}

/* What a new object is; make() creates it at dfd/path. */
struct newobj {
	mode_t mode;
	dev_t rdev;
	const char *target;	/* symlinks */
};

static int make_node(int dfd, const char *path, const struct newobj *o)
{
	int r;

	if (S_ISDIR(o->mode))
		r = bn_mkdirat(dfd, path, o->mode & 07777);
	else if (S_ISLNK(o->mode))
		r = bn_symlinkat(o->target, dfd, path);
	else
		r = bn_mknodat(dfd, path, o->mode, o->rdev);
	return r < 0 ? -errno : 0;
}

/* mknod, mkdir, symlink: place, create, give to the caller, reply. */
static void create_named(fuse_req_t req, fuse_ino_t parent, const char *name,
			 const struct newobj *o)
{
	struct vfs *v = req_vfs(req);
	struct node *p = req_node(req, parent);
	struct newname nn;
	int ret;

	ns_lock_shared(v->ns);
	ret = newname_prepare(v, p, name, -1, &nn);
	if (!ret)
		ret = make_node(v->store->ds[nn.ds].fd, nn.path, o);
	ns_unlock(v->ns);
	if (!ret) {
		vfs_set_owner(v, req, nn.ds, nn.path, &nn.parent_st);
		ns_dir_changed(v->ns, VDS_DS_BIT(nn.ds), nn.parent_path);
	}
	reply_new(req, p, name, ret);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	struct newobj o = { .mode = mode, .rdev = rdev };

	create_named(req, parent, name, &o);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct newobj o = { .mode = S_IFDIR | (mode & 07777) };

	create_named(req, parent, name, &o);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent,
		       const char *name)
{
	struct newobj o = { .mode = S_IFLNK | 0777, .target = target };

	create_named(req, parent, name, &o);
}

/* A hard link must stay on its file's datastore: that is where the inode is. */
static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct vfs *v = req_vfs(req);
	struct node *n = req_node(req, ino), *p = req_node(req, newparent);
	struct newname nn;
	char src[32];
	int ret;

	if (n->is_dir) {
		fuse_reply_err(req, EPERM);
		return;
	}
	struct vfile *vf = vfile_hold(v->ns, n);

	ns_lock_shared(v->ns);
	ret = vfile_routed(vf) ? -EBUSY : newname_prepare(v, p, newname, n->ds, &nn);
	fd_path(n->fd, src);
	if (!ret && bn_linkat_to(src, v->store->ds[nn.ds].fd, nn.path) < 0)
		ret = -errno;
	if (!ret)
		ns_dir_changed(v->ns, VDS_DS_BIT(nn.ds), nn.parent_path);
	ns_unlock(v->ns);
	vfile_unhold(v->ns, vf);
	reply_new(req, p, newname, ret);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct vfs *v = req_vfs(req);
	struct node *p = req_node(req, parent);
	char path[PATH_MAX], ppath[PATH_MAX];
	struct stat st;
	int ret = ns_name_hidden(v->ns, p, name) ? -ENOENT
					  : node_child_path(&v->ns->nodes, p, name, path, sizeof(path));
	int ds;

	ns_lock_shared(v->ns);
	ds = ret ? ret : ns_find(v->ns, path, &st);
	if (ds >= 0)
		ret = bn_unlinkat(v->store->ds[ds].fd, path, 0) < 0 ? -errno : 0;
	else
		ret = ds;
	if (!ret && S_ISREG(st.st_mode))
		mig_path_unlinked(v->migs, path);
	if (!ret) {
		vds_parent_path(path, ppath, sizeof(ppath));
		ns_dir_changed(v->ns, VDS_DS_BIT(ds), ppath);
	}
	ns_unlock(v->ns);
	mig_sync_journals(v->migs);
	fuse_reply_err(req, -ret);
}

/* 0 if the directory copy at path on dfd has no entries (or does not exist). */
static int dir_empty(int dfd, const char *path)
{
	int fd = bn_open(dfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
	struct dirent *de;
	DIR *d;
	int ret = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			ret = -ENOTEMPTY;
			break;
		}
	closedir(d);
	return ret;
}

/* Which datastores hold a directory at path, as a bitmask in *mask; -ENOTDIR if
 * some datastore holds something else there. */
static int dir_copies(struct vfs *v, const char *path, uint64_t *mask)
{
	struct stat st;

	*mask = 0;
	for (int i = 0; i < v->store->nds; i++) {
		if (!store_live(v->store, i) ||
		    bn_fstatat(v->store->ds[i].fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISDIR(st.st_mode))
			return -ENOTDIR;
		*mask |= VDS_DS_BIT(i);
	}
	return 0;
}

static int rmdir_all(struct vfs *v, const char *path)
{
	char ppath[PATH_MAX];
	uint64_t mask;
	int ret = dir_copies(v, path, &mask);

	if (!ret && !mask)
		ret = -ENOENT;
	for (int i = 0; i < v->store->nds && !ret; i++)
		if (mask & VDS_DS_BIT(i))
			ret = dir_empty(v->store->ds[i].fd, path);
	for (int i = 0; i < v->store->nds && !ret; i++)
		if ((mask & VDS_DS_BIT(i)) && bn_unlinkat(v->store->ds[i].fd, path, AT_REMOVEDIR) < 0 &&
		    errno != ENOENT)
			ret = -errno;
	if (!ret) {
		vds_parent_path(path, ppath, sizeof(ppath));
		ns_dir_changed(v->ns, mask, ppath);
	}
	return ret;
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct vfs *v = req_vfs(req);
	struct node *p = req_node(req, parent);
	char path[PATH_MAX];
	int ret = ns_name_hidden(v->ns, p, name) ? -ENOENT
					  : node_child_path(&v->ns->nodes, p, name, path, sizeof(path));

	if (!ret) {
		ns_lock_shared(v->ns);
		ret = rmdir_all(v, path);
		ns_unlock(v->ns);
	}
	if (!ret)
		node_unhash_dir(&v->ns->nodes, p, name);
	fuse_reply_err(req, -ret);
}

struct rename_ctx {
	char from[PATH_MAX], to[PATH_MAX], from_parent[PATH_MAX], to_parent[PATH_MAX];
	unsigned flags;
	bool replaced_file;	/* a regular file was at `to` and is gone now */
	uint64_t changed;	/* datastores whose copies of both parents changed */
};

/* Remove what the moved object replaced on datastores not in keep. */
static int drop_replaced(struct vfs *v, const char *to, uint64_t keep)
{
	struct stat st;

	for (int i = 0; i < v->store->nds; i++) {
		if ((keep & VDS_DS_BIT(i)) || !store_live(v->store, i) ||
		    bn_fstatat(v->store->ds[i].fd, to, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (bn_unlinkat(v->store->ds[i].fd, to, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0)
			return -errno;
	}
	return 0;
}

static int rename_file(struct vfs *v, int ds, struct rename_ctx *c)
{
	int ret = ns_mkpath(v->ns, ds, c->to_parent);

	if (!ret && bn_renameat2(v->store->ds[ds].fd, c->from, v->store->ds[ds].fd, c->to, c->flags) < 0)
		ret = -errno;
	if (!ret && !(c->flags & RENAME_EXCHANGE))
		ret = drop_replaced(v, c->to, VDS_DS_BIT(ds));
	c->changed = VDS_DS_BIT(ds);
	return ret;
}

static int rename_dir(struct vfs *v, struct rename_ctx *c)
{
	uint64_t mask, tmask = 0;
	int ret = dir_copies(v, c->from, &mask);

	if (!ret && !mask)
		ret = -ENOENT;
	if (!ret)
		ret = dir_copies(v, c->to, &tmask);
	for (int i = 0; i < v->store->nds && !ret; i++)
		if (tmask & VDS_DS_BIT(i))
			ret = dir_empty(v->store->ds[i].fd, c->to);
	for (int i = 0; i < v->store->nds && !ret; i++) {
		if (!(mask & VDS_DS_BIT(i)))
			continue;
		ret = ns_mkpath(v->ns, i, c->to_parent);
		if (!ret && bn_renameat2(v->store->ds[i].fd, c->from, v->store->ds[i].fd, c->to, c->flags) < 0)
			ret = -errno;
	}
	c->changed = mask;
	return ret ? ret : drop_replaced(v, c->to, mask);
}

static int rename_any(struct vfs *v, struct node *p, const char *name, struct node *np,
		      const char *newname, struct rename_ctx *c)
{
	struct stat st, tst;
	int ds, tds, ret;

	if (ns_name_hidden(v->ns, p, name) || ns_name_hidden(v->ns, np, newname))
		return -EPERM;
	ret = node_child_path(&v->ns->nodes, p, name, c->from, sizeof(c->from));
	if (!ret)
		ret = node_child_path(&v->ns->nodes, np, newname, c->to, sizeof(c->to));
	if (!ret)
		ret = node_dir_path(&v->ns->nodes, np, c->to_parent, sizeof(c->to_parent));
	if (!ret)
		ret = node_dir_path(&v->ns->nodes, p, c->from_parent, sizeof(c->from_parent));
	if (ret)
		return ret;
	ds = ns_find(v->ns, c->from, &st);
	if (ds < 0)
		return ds;
	tds = ns_find(v->ns, c->to, &tst);
	if (tds >= 0 && (c->flags & RENAME_NOREPLACE))
		return -EEXIST;
	if (c->flags & RENAME_EXCHANGE) {
		/* Swapping two names is only atomic within one filesystem. */
		if (tds < 0)
			return -ENOENT;
		if (S_ISDIR(st.st_mode) || S_ISDIR(tst.st_mode) || tds != ds)
			return -EXDEV;
	}
	if (tds >= 0 && S_ISDIR(tst.st_mode) != S_ISDIR(st.st_mode))
		return S_ISDIR(st.st_mode) ? -ENOTDIR : -EISDIR;
	c->replaced_file = tds >= 0 && S_ISREG(tst.st_mode) && !(c->flags & RENAME_EXCHANGE);
	if (S_ISDIR(st.st_mode))
		return rename_dir(v, c);
	return rename_file(v, ds, c);
}

/* The migrations follow the names: a file replaced by the rename is gone, so its
 * migration rolls back (before the moved file takes over its path); an exchange
 * swaps two paths; a plain rename moves everything under from to to. */
static void rename_migrations(struct vfs *v, struct rename_ctx *c)
{
	if (c->flags & RENAME_EXCHANGE) {
		mig_path_exchanged(v->migs, c->from, c->to);
		return;
	}
	if (c->replaced_file)
		mig_path_unlinked(v->migs, c->to);
	mig_path_moved(v->migs, c->from, c->to);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct vfs *v = req_vfs(req);
	struct node *p = req_node(req, parent), *np = req_node(req, newparent);
	struct rename_ctx *c = calloc(1, sizeof(*c));
	int ret = c ? 0 : -ENOMEM;

	if (c) {
		c->flags = flags;
		ns_lock_shared(v->ns);
		ret = rename_any(v, p, name, np, newname, c);
		if (!ret) {
			rename_migrations(v, c);
			ns_dir_changed(v->ns, c->changed, c->from_parent);
			ns_dir_changed(v->ns, c->changed, c->to_parent);
		}
		ns_unlock(v->ns);
		mig_sync_journals(v->migs);	/* the journals follow, outside the lock */
		free(c);
	}
	if (!ret)
		ret = node_move_dir(&v->ns->nodes, p, name, np, newname);
	fuse_reply_err(req, -ret);
}

void vds_ops_names(struct fuse_lowlevel_ops *ops)
{
	ops->mknod = op_mknod;
	ops->mkdir = op_mkdir;
	ops->symlink = op_symlink;
	ops->link = op_link;
	ops->unlink = op_unlink;
	ops->rmdir = op_rmdir;
	ops->rename = op_rename;
}
