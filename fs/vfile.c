/* vfile.c - create and tear down the per-node open-file object (see vfile.h).
 *
 * vfile_lock guards node->vf and every vf->handles list. Opens and releases are rare
 * next to reads and writes, so one mutex for all of them costs nothing measurable
 * and keeps the lifetime rule simple: a vfile lives while it has a handle.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "vdsfs.h"
#include "vfile.h"

static pthread_mutex_t vfile_lock = PTHREAD_MUTEX_INITIALIZER;

/* Flags the kernel has already acted on, or that would change pwrite semantics:
 * O_APPEND makes Linux pwrite ignore its offset, and the kernel sends the append
 * offset itself. */
#define VFILE_STRIP	(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND)

static struct vfile *vfile_get_locked(struct node *n)
{
	struct vfile *vf = n->vf;

	if (vf)
		return vf;
	vf = calloc(1, sizeof(*vf));
	if (!vf)
		return NULL;
	pthread_rwlock_init(&vf->gate, NULL);
	vf->node = n;
	n->vf = vf;
	return vf;
}

int vfile_attach(struct vds *v, struct node *n, int fd, int flags, struct vhandle **out)
{
	struct vhandle *h = calloc(1, sizeof(*h));
	struct vfile *vf;

	(void)v;
	if (!h)
		return -ENOMEM;
	h->fd = fd;
	h->flags = flags;
	h->direct = flags & O_DIRECT;
	pthread_mutex_lock(&vfile_lock);
	vf = vfile_get_locked(n);
	if (vf) {
		h->vf = vf;
		h->next = vf->handles;
		vf->handles = h;
	}
	pthread_mutex_unlock(&vfile_lock);
	if (!vf) {
		free(h);
		return -ENOMEM;
	}
	*out = h;
	return 0;
}

int vfile_open(struct vds *v, struct node *n, int flags, struct vhandle **out)
{
	char path[32];
	int fd, ret;

	flags = (flags & ~VFILE_STRIP) | O_CLOEXEC;
	fd_path(n->fd, path);
	fd = open(path, flags);
	if (fd < 0)
		return -errno;
	ret = vfile_attach(v, n, fd, flags, out);
	if (ret)
		close(fd);
	return ret;
}

void vfile_release(struct vds *v, struct vhandle *h)
{
	struct vfile *vf = h->vf, *dead = NULL;
	struct node *n = vf->node;

	pthread_mutex_lock(&vfile_lock);
	for (struct vhandle **pp = &vf->handles; *pp; pp = &(*pp)->next)
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	if (!vf->handles) {
		n->vf = NULL;
		dead = vf;
	}
	pthread_mutex_unlock(&vfile_lock);
	close(h->fd);
	free(h);
	if (dead) {
		pthread_rwlock_destroy(&dead->gate);
		free(dead);
		node_forget(&v->nodes, n, 0);	/* frees n if the kernel forgot it meanwhile */
	}
}
