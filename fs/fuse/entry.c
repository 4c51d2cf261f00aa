/* entry.c - replies that name a node: entries for lookup, create and readdirplus. */
#include <string.h>

#include "vfs.h"

void vfs_fill_entry(struct vfs *v, struct node *n, const struct stat *st,
		    struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = node_id(&v->ns->nodes, n);
	e->attr = *st;
	e->attr.st_ino = n->st_ino;
	e->attr_timeout = v->timeout;
	e->entry_timeout = v->timeout;
}

int vfs_entry(struct vfs *v, struct node *parent, const char *name, struct fuse_entry_param *e)
{
	struct node *n;
	struct stat st;
	int ret = ns_entry(v->ns, parent, name, &n, &st);

	if (!ret)
		vfs_fill_entry(v, n, &st, e);
	return ret;
}

/* In a setgid directory the group was already inherited from it by the backing
 * filesystem, exactly as a local mkdir would (ns_set_owner). */
void vfs_set_owner(struct vfs *v, fuse_req_t req, int ds, const char *path,
		   const struct stat *parent_st)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	ns_set_owner(v->ns, ds, path, ctx->uid, ctx->gid, parent_st);
}

void vfs_ops(struct fuse_lowlevel_ops *ops)
{
	memset(ops, 0, sizeof(*ops));
	vds_ops_attr(ops);
	vds_ops_names(ops);
	vds_ops_io(ops);
	vds_ops_dir(ops);
	vds_ops_xattr(ops);
	vds_ops_fs(ops);
}
