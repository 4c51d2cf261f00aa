/* node.h - the inodes the kernel knows, and how they map onto datastores.
 *
 * A FUSE node id is the address of a struct node (1 is the root). Two kinds:
 *  - directories are union directories: the same relative path may exist on several
 *    datastores. Their identity is their place in the tree (parent node + name), and
 *    every operation on them rebuilds the relative path by walking up the parents.
 *  - everything else (files, symlinks, fifos, sockets) lives on exactly one datastore.
 *    Its identity is the backing inode (st_dev, st_ino), so hard links share one
 *    node, and the node holds an O_PATH fd on that inode: operations by node id never
 *    walk a path, and keep working after the name is renamed or unlinked.
 *
 * st_ino as users see it is derived from (datastore index, backing st_ino), so it is
 * the same after a forget and a fresh lookup. A file moved to another datastore keeps
 * its number through node->st_ino (the migration code carries it over).
 *
 * Locking: table->lock (LK_NODES, fs/lock/lock.h) guards the hash chains, nlookup,
 * pins, children, the parent/name of directory nodes, and each file node's vf
 * pointer together with that vfile's reference count (vfile.c). The fd/ds/bdev/bino
 * of a file node are written once at creation; a switch to another datastore
 * (node_rebind_file) changes them with table->lock held and the file's gate held
 * exclusive, so I/O and metadata calls, which hold the gate shared, see them stable.
 */
#ifndef VDS_NODE_H
#define VDS_NODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "wrate.h"

struct vfile;

struct node {
	struct node *hnext;	/* hash chain (dir or file table) */
	uint64_t nlookup;	/* kernel references */
	unsigned pins;		/* daemon references (a migration) */
	unsigned children;	/* directory nodes whose parent we are */
	bool hashed;		/* false once removed or replaced: lookups miss it */
	bool is_dir;
	/* directories */
	struct node *parent;
	char *name;
	/* non-directories */
	int fd;			/* O_PATH | O_NOFOLLOW on the backing inode */
	int ds;			/* index of the datastore holding it */
	dev_t bdev;
	ino_t bino;
	struct wrate wrate;	/* recent writes (wrate.h): lock-free, kept across a switch */
	/* both */
	uint64_t st_ino;	/* what stat() shows */
	struct vfile *vf;	/* open-file state, NULL if none; table->lock */
};

#define NODE_BUCKETS	(1u << 16)

struct node_table {
	pthread_mutex_t lock;
	struct node root;
	struct node *dirs[NODE_BUCKETS];
	struct node *files[NODE_BUCKETS];
};

static inline uint64_t node_st_ino(int ds, ino_t ino)
{
	return (uint64_t)ino ^ ((uint64_t)ds << 56);
}

void node_table_init(struct node_table *t);
void node_table_destroy(struct node_table *t);
/* The id the kernel knows a node by is its address; the root's is NODE_ROOT_ID. */
#define NODE_ROOT_ID	1
struct node *node_of(struct node_table *t, uint64_t id);
uint64_t node_id(struct node_table *t, struct node *n);

int node_dir_path(struct node_table *t, struct node *dir, char *buf, size_t len);
int node_child_path(struct node_table *t, struct node *dir, const char *name, char *buf,
		    size_t len);

struct node *node_ref_dir(struct node_table *t, struct node *parent, const char *name,
			  uint64_t st_ino);
struct node *node_ref_file(struct node_table *t, int ds, int opath_fd,
			   const struct stat *st);
void node_forget(struct node_table *t, struct node *n, uint64_t nlookup);
struct node *node_pin_file(struct node_table *t, int ds, int opath_fd, const struct stat *st);
void node_unpin(struct node_table *t, struct node *n);
void node_unhash_dir(struct node_table *t, struct node *parent, const char *name);
void node_for_each_file(struct node_table *t, void (*fn)(struct node *n, void *arg), void *arg);
/* The recent write rate (bytes/s) of the file node of backing inode (dev, ino), 0
 * if there is none: a file nobody has looked up has not been written through us. */
uint64_t node_write_rate(struct node_table *t, dev_t dev, ino_t ino);
int node_rebind_file(struct node_table *t, struct node *n, int ds, int opath_fd,
		     const struct stat *st);
int node_move_dir(struct node_table *t, struct node *parent, const char *name,
		  struct node *newparent, const char *newname);

#endif
