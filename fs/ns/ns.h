/* ns.h - the namespace: one tree of names over every datastore of a store.
 *
 * A name resolves to the first datastore (in the order the mount lists them) where
 * it exists. For a regular file that is its only home; for a directory the first
 * copy supplies the attributes and the others only add entries to a listing. New
 * objects go where the create policy says (store_pick); their parent directory is
 * created there on demand, shaped like an existing copy, so the union looks the
 * same whichever datastore a name lands on. Paths are relative to a datastore and
 * resolve beneath it (beneath.h).
 *
 * The namespace also keeps the kernel's nodes (node.h) and their open files
 * (vfile.h), whose I/O route another layer (a migration) may take over through
 * vfile.h's route calls: ns itself never knows what a route does.
 *
 * Locking (fs/lock/lock.h has the order): ns->lock, LK_NS, is held shared around
 * "resolve a name, then act on it" by every name operation, and exclusive by a
 * migration's flip (ns_lock_excl), so that no one ever sees a file on two
 * datastores or on none. The set of hidden inodes has a leaf lock of its own.
 */
#ifndef VDS_NS_H
#define VDS_NS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "lock.h"
#include "node.h"
#include "store.h"

struct ns_hidden {
	int ds;
	dev_t dev;
	ino_t ino;
};

struct ns {
	struct store *store;
	pthread_rwlock_t lock;		/* LK_NS, see above */
	/* Inodes lookups must not see (a migrated file's old copy that could not be
	 * removed yet): guarded by hide_lock (LK_LEAF); nhidden is read without it
	 * first, so lookups pay nothing while the set is empty. */
	pthread_mutex_t hide_lock;
	struct ns_hidden *hidden;
	size_t hidden_cap;
	atomic_size_t nhidden;
	struct node_table nodes;	/* last: it is large */
};

/* Set up an empty namespace over store s (which must outlive it). 0 or -ENOMEM. */
int ns_init(struct ns *ns, struct store *s);
/* Free every node and open file (the daemon is done with the mount). */
void ns_destroy(struct ns *ns);

static inline void ns_lock_shared(struct ns *ns)
{
	lk_rdlock(&ns->lock, LK_NS);
}

static inline void ns_lock_excl(struct ns *ns)
{
	lk_wrlock(&ns->lock, LK_NS);
}

static inline void ns_unlock(struct ns *ns)
{
	lk_rwunlock(&ns->lock, LK_NS);
}

/* The state folder only exists at each datastore's top level; it never shows. */
bool ns_name_hidden(struct ns *ns, struct node *parent, const char *name);

/* The datastore where path resolves, with its lstat in *st; -ENOENT if none has it
 * (a symlink or a file on the way counts as "not there"), another -errno on an I/O
 * error. Hidden inodes are skipped. */
int ns_find(struct ns *ns, const char *path, struct stat *st);
/* Like ns_find, for paths from outside the kernel (control requests): -EINVAL if
 * path is not vds_path_sane or any component is a symlink, the last one included. */
int ns_find_beneath(struct ns *ns, const char *path, struct stat *st);

/* Resolve parent/name and take a kernel reference on its node (nlookup + 1): *out
 * and its attributes as the file reads now (a routed file's fixed up, vfile.h). */
int ns_entry(struct ns *ns, struct node *parent, const char *name, struct node **out,
	     struct stat *st);
/* The attributes of node n as users see them (st_ino included). */
int ns_stat_node(struct ns *ns, struct node *n, struct stat *st);

/* mkdir -p of dirpath ("." is the top) on datastore ds, each new directory shaped
 * like its copy elsewhere (mode, owner, times). */
int ns_mkpath(struct ns *ns, int ds, const char *dirpath);
/* A name was added to or removed from the copies of union directory dirpath on the
 * datastores in mask (VDS_DS_BIT): if the copy the union shows is not one of them,
 * its mtime and ctime are set to now, as a local directory's would be. */
void ns_dir_changed(struct ns *ns, uint64_t mask, const char *dirpath);
/* A new object at path on ds belongs to its creator (uid, gid), unless the daemon
 * is not root; in a setgid directory (parent_st) the group is already inherited. */
void ns_set_owner(struct ns *ns, int ds, const char *path, uid_t uid, gid_t gid,
		  const struct stat *parent_st);

/* Hide (or show again) inode (dev, ino) on datastore ds from every lookup. */
int ns_hide(struct ns *ns, int ds, dev_t dev, ino_t ino);
void ns_unhide(struct ns *ns, int ds, dev_t dev, ino_t ino);

#endif
