/* vfile.h - open files.
 *
 * Every open of a regular file goes through one struct vfile per node, shared by all
 * of its handles. The vfile is the single place where a file's I/O is routed: today
 * straight to the backing fd of each handle ("passthrough"), and during a migration
 * through the overlay and then to the destination. Switching the route, or the
 * backing file, happens under the exclusive side of vf->gate; every read, write,
 * fsync and fallocate holds the shared side for the duration of the backing call, so
 * a switch waits for in-flight I/O and no request ever sees half a switch. Handles
 * stay valid across a switch: their fds are reopened on the new backing.
 *
 * Lock order: node table lock is never held while taking vfile_lock or a gate.
 */
#ifndef VDS_VFILE_H
#define VDS_VFILE_H

#include <pthread.h>
#include <stdbool.h>

struct vds;
struct node;
struct mig;

struct vhandle {
	struct vfile *vf;
	struct vhandle *next;	/* vf->handles, guarded by vfile_lock */
	int fd;			/* backing fd, opened with the opener's flags */
	int flags;
	bool direct;		/* opened O_DIRECT: buffers must be aligned */
};

struct vfile {
	pthread_rwlock_t gate;	/* shared: any I/O; exclusive: switching route/backing */
	struct node *node;
	struct vhandle *handles;	/* guarded by vfile_lock */
	unsigned refs;		/* handles + a migration; guarded by vfile_lock */
	struct mig *mig;	/* non-NULL while migrating: I/O goes through it.
				 * Written under gate exclusive, read under shared. */
};

int vfile_open(struct vds *v, struct node *n, int flags, struct vhandle **out);
int vfile_attach(struct vds *v, struct node *n, int fd, int flags, struct vhandle **out);
void vfile_release(struct vds *v, struct vhandle *h);
struct vfile *vfile_get(struct node *n);
struct vfile *vfile_get_existing(struct node *n);
void vfile_put(struct vds *v, struct vfile *vf);
struct vfile *vfile_hold(struct node *n);
void vfile_unhold(struct vds *v, struct vfile *vf);
void vfile_teardown_all(struct vds *v);
void vfile_handles_lock(void);
void vfile_handles_unlock(void);
void vfile_for_each_handle(struct vfile *vf, void (*fn)(struct vhandle *h, void *arg),
			   void *arg);

static inline void vfile_io_begin(struct vhandle *h)
{
	pthread_rwlock_rdlock(&h->vf->gate);
}

static inline void vfile_io_end(struct vhandle *h)
{
	pthread_rwlock_unlock(&h->vf->gate);
}

#endif
