/* vfile.c - create and tear down the per-node open-file object (see vfile.h).
 *
 * vfile_lock guards node->vf, every vf->handles list and vf->refs. Opens and
 * releases are rare next to reads and writes, so one mutex for all of them costs
 * nothing measurable and keeps the lifetime rule simple: a vfile lives while it has
 * a handle or a migration holds it; while it lives, its node lives (node.c never
 * frees a node whose vf is set).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "mig.h"
#include "vdsfs.h"
#include "vfile.h"

static pthread_mutex_t vfile_lock = PTHREAD_MUTEX_INITIALIZER;

/* Flags the backing open must not see: O_CREAT and O_EXCL were acted on by the
 * lookup or create before, O_TRUNC is applied by vfile_open itself (the route
 * decides how), and O_APPEND would make Linux pwrite ignore its offset while the
 * kernel already sends the append offset. */
#define VFILE_STRIP	(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND)

static struct vfile *vfile_get_locked(struct node *n)
{
	struct vfile *vf = n->vf;

	if (vf)
		return vf;
	vf = calloc(1, sizeof(*vf));
	if (!vf)
		return NULL;
	pthread_rwlockattr_t a;

	/* Writer-preferring: once a switch waits for the gate, new I/O queues behind
	 * it, so a busy file cannot starve the switch and the pause stays short. */
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&vf->gate, &a);
	pthread_rwlockattr_destroy(&a);
	vf->node = n;
	n->vf = vf;
	return vf;
}

struct vfile *vfile_get(struct node *n)
{
	pthread_mutex_lock(&vfile_lock);
	struct vfile *vf = vfile_get_locked(n);
	if (vf)
		vf->refs++;
	pthread_mutex_unlock(&vfile_lock);
	return vf;
}

struct vfile *vfile_get_existing(struct node *n)
{
	pthread_mutex_lock(&vfile_lock);
	struct vfile *vf = n->vf;
	if (vf)
		vf->refs++;
	pthread_mutex_unlock(&vfile_lock);
	return vf;
}

static bool vfile_unref_locked(struct vfile *vf)
{
	if (--vf->refs)
		return false;
	vf->node->vf = NULL;
	return true;
}

static void vfile_free(struct vds *v, struct vfile *vf)
{
	struct node *n = vf->node;

	pthread_rwlock_destroy(&vf->gate);
	free(vf);
	node_forget(&v->nodes, n, 0);	/* frees n if the kernel forgot it meanwhile */
}

void vfile_put(struct vds *v, struct vfile *vf)
{
	pthread_mutex_lock(&vfile_lock);
	bool dead = vfile_unref_locked(vf);
	pthread_mutex_unlock(&vfile_lock);
	if (dead)
		vfile_free(v, vf);
}

void vfile_handles_lock(void)
{
	pthread_mutex_lock(&vfile_lock);
}

void vfile_handles_unlock(void)
{
	pthread_mutex_unlock(&vfile_lock);
}

/* Caller holds vfile_handles_lock(). */
void vfile_for_each_handle(struct vfile *vf, void (*fn)(struct vhandle *h, void *arg),
			   void *arg)
{
	for (struct vhandle *h = vf->handles; h; h = h->next)
		fn(h, arg);
}

static int attach_locked(struct node *n, int fd, int flags, struct vhandle **out)
{
	struct vhandle *h = calloc(1, sizeof(*h));
	struct vfile *vf = h ? vfile_get_locked(n) : NULL;

	if (!vf) {
		free(h);
		return -ENOMEM;
	}
	h->fd = fd;
	h->flags = flags;
	h->direct = flags & O_DIRECT;
	vf->refs++;
	h->vf = vf;
	h->next = vf->handles;
	vf->handles = h;
	*out = h;
	return 0;
}

int vfile_attach(struct vds *v, struct node *n, int fd, int flags, struct vhandle **out)
{
	(void)v;
	pthread_mutex_lock(&vfile_lock);
	int ret = attach_locked(n, fd, flags, out);
	pthread_mutex_unlock(&vfile_lock);
	return ret;
}

/* Open a handle on node n. The backing fd is opened under vfile_lock: a migration
 * switch holds it while it moves node->fd and every handle to the destination, so a
 * new handle is either in the list the switch moves or opened after it, on the
 * destination.
 *
 * O_TRUNC is ours to carry out: the kernel leaves the truncation of an open to the
 * filesystem (FUSE's atomic O_TRUNC). The gate is held shared across the open so the
 * route cannot change under it: an idle file is truncated by the backing open itself
 * (which also sets mtime and ctime as the backing filesystem keeps them, even when
 * the size was already 0); a migrating one through its overlay and mirror, as
 * ftruncate would be. The handle remembers the flags without O_TRUNC, since a switch
 * reopens each handle on the destination with them. */
int vfile_open(struct vds *v, struct node *n, int flags, struct vhandle **out)
{
	bool trunc = flags & O_TRUNC;
	struct vfile *vf = vfile_get(n);
	char path[32];
	int fd, ret, bflags;

	if (!vf)
		return -ENOMEM;
	flags = (flags & ~VFILE_STRIP) | O_CLOEXEC;
	pthread_rwlock_rdlock(&vf->gate);
	bflags = flags | (trunc && !vf->mig ? O_TRUNC : 0);
	pthread_mutex_lock(&vfile_lock);
	fd_path(n->fd, path);
	fd = open(path, bflags);
	ret = fd < 0 ? -errno : attach_locked(n, fd, flags, out);
	pthread_mutex_unlock(&vfile_lock);
	if (ret && fd >= 0)
		close(fd);
	if (!ret && trunc && vf->mig && (ret = mig_truncate(vf->mig, 0))) {
		pthread_rwlock_unlock(&vf->gate);
		vfile_release(v, *out);
		vfile_put(v, vf);
		return ret;
	}
	pthread_rwlock_unlock(&vf->gate);
	vfile_put(v, vf);	/* the handle holds its own reference */
	return ret;
}

void vfile_release(struct vds *v, struct vhandle *h)
{
	struct vfile *vf = h->vf;
	bool dead;

	pthread_mutex_lock(&vfile_lock);
	for (struct vhandle **pp = &vf->handles; *pp; pp = &(*pp)->next)
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	dead = vfile_unref_locked(vf);
	pthread_mutex_unlock(&vfile_lock);
	close(h->fd);
	free(h);
	if (dead)
		vfile_free(v, vf);
}

/* Hold a file node's backing stable for a metadata operation: a migration switch
 * rebinds node->fd under the gate held exclusive, so with the gate held shared the
 * fd cannot change or be closed underneath. Nodes without a vfile are not migrating. */
struct vfile *vfile_hold(struct node *n)
{
	struct vfile *vf = vfile_get_existing(n);

	if (vf)
		pthread_rwlock_rdlock(&vf->gate);
	return vf;
}

void vfile_unhold(struct vds *v, struct vfile *vf)
{
	if (!vf)
		return;
	pthread_rwlock_unlock(&vf->gate);
	vfile_put(v, vf);
}

/* Daemon teardown: files still open when the mount went away (the kernel sends no
 * release after an unmount) are closed here. */
static void teardown_one(struct node *n, void *arg)
{
	struct vfile *vf = n->vf;

	(void)arg;
	if (!vf)
		return;
	for (struct vhandle *h = vf->handles, *next; h; h = next) {
		next = h->next;
		close(h->fd);
		free(h);
	}
	pthread_rwlock_destroy(&vf->gate);
	free(vf);
	n->vf = NULL;
}

void vfile_teardown_all(struct vds *v)
{
	node_for_each_file(&v->nodes, teardown_one, NULL);
}
