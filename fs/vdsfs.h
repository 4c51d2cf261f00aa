/* vdsfs.h - the daemon's shared state and the helpers every FUSE op file uses.
 *
 * struct vds is created once by main() and handed to libfuse as userdata; op
 * handlers reach it with req_vds(req). It is read-only after mount except for the
 * node table (node.h has its lock rule) and the open-file objects (vfile.h).
 */
#ifndef VDS_VDSFS_H
#define VDS_VDSFS_H

#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "datastore.h"
#include "node.h"
#include "opts.h"

struct mig;
struct sched;

struct vds {
	struct vds_opts opts;
	struct datastore ds[VDS_MAX_DS];
	int nds;
	int create_named;		/* index for create=NAME, else -1 */
	bool root;			/* running as root: may chown new objects */
	struct fuse_session *se;
	/* Lookups and name changes hold ns_lock shared around "resolve, then act";
	 * a migration's flip (rename on the destination + unlink on the source) holds
	 * it exclusive, so no one ever sees the file on both datastores or on none. */
	pthread_rwlock_t ns_lock;
	/* The migration registry (mig_ctl.c), all guarded by mig_lock with the (L)
	 * fields of each record: every record, oldest first; the finished ones still
	 * listed, in the order they finished (at most MIG_KEEP_FINISHED; older ones are
	 * dropped, and freed once nothing refers to them any more). */
	pthread_mutex_t mig_lock;
	struct mig *migs, *migs_tail;
	struct mig *done_head, *done_tail;
	size_t ndone;
	uint64_t dropped;		/* finished records no longer listed */
	uint64_t next_mig_id;
	struct sched *sched;
	int ctl_fd;			/* listening control socket, -1 if none */
	char *ctl_path;
	bool ctl_group;			/* -o control_group given: ctl_gid may connect */
	gid_t ctl_gid;
	struct node_table nodes;	/* last: it is large */
};

extern const struct fuse_lowlevel_ops vds_ops;

static inline struct vds *req_vds(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static inline struct node *req_node(fuse_req_t req, fuse_ino_t ino)
{
	return node_of(&req_vds(req)->nodes, ino);
}

/* The state folder only exists at each datastore's top level; it never shows. */
static inline bool name_hidden(struct vds *v, struct node *parent, const char *name)
{
	return parent == &v->nodes.root && !strcmp(name, VDS_STATE_DIR);
}

/* /proc/self/fd/N: how an O_PATH fd is turned back into a path for calls (chmod,
 * utimes, xattrs, reopen) that have no fd-relative form accepting O_PATH. */
static inline void fd_path(int fd, char buf[32])
{
	snprintf(buf, 32, "/proc/self/fd/%d", fd);
}

/* lookup.c */
int vds_find(struct vds *v, const char *path, struct stat *st);
int vds_stat_node(struct vds *v, struct node *n, struct stat *st);
int vds_entry(struct vds *v, struct node *parent, const char *name, struct fuse_entry_param *e);
void vds_fill_entry(struct vds *v, struct node *n, const struct stat *st,
		    struct fuse_entry_param *e);
int vds_mkpath(struct vds *v, int ds, const char *dirpath);
int vds_pick_ds(struct vds *v);
bool vds_path_sane(const char *p);
void vds_parent_path(const char *path, char *out, size_t len);
void vds_dir_changed(struct vds *v, uint64_t mask, const char *dirpath);
#define VDS_DS_BIT(ds)	(1ull << (ds))
int vds_find_beneath(struct vds *v, const char *path, struct stat *st);
void vds_set_owner(struct vds *v, fuse_req_t req, int ds, const char *path,
		   const struct stat *parent_st);

#endif
