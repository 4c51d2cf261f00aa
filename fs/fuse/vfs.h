/* vfs.h - the FUSE front end: kernel requests turned into ns/ and mig/ calls.
 *
 * struct vfs is libfuse's userdata: the layers below as one request handler needs
 * them. Node ids are node addresses (node.h); replies carry the attribute and entry
 * timeout the mount was given. Nothing below this folder includes a FUSE header.
 */
#ifndef VDS_VFS_H
#define VDS_VFS_H

#include <fuse_lowlevel.h>

#include "node.h"
#include "ns.h"
#include "store.h"

struct migs;

struct vfs {
	struct store *store;
	struct ns *ns;
	struct migs *migs;
	double timeout;		/* entry and attribute cache time, seconds */
};

static inline struct vfs *req_vfs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static inline struct node *req_node(fuse_req_t req, fuse_ino_t ino)
{
	return node_of(&req_vfs(req)->ns->nodes, ino);
}

/* entry.c: parent/name as a reply entry, with a kernel reference taken on its node
 * (nlookup + 1), or -errno. */
int vfs_entry(struct vfs *v, struct node *parent, const char *name, struct fuse_entry_param *e);
void vfs_fill_entry(struct vfs *v, struct node *n, const struct stat *st,
		    struct fuse_entry_param *e);
/* A new object at path on datastore ds belongs to the caller of req. */
void vfs_set_owner(struct vfs *v, fuse_req_t req, int ds, const char *path,
		   const struct stat *parent_st);

/* The operations, by file; vfs_ops() fills them all in. */
void vds_ops_attr(struct fuse_lowlevel_ops *ops);
void vds_ops_names(struct fuse_lowlevel_ops *ops);
void vds_ops_io(struct fuse_lowlevel_ops *ops);
void vds_ops_dir(struct fuse_lowlevel_ops *ops);
void vds_ops_xattr(struct fuse_lowlevel_ops *ops);
void vds_ops_fs(struct fuse_lowlevel_ops *ops);
void vfs_ops(struct fuse_lowlevel_ops *ops);

#endif
