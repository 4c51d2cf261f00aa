/* evac_move.c - what an evacuation moves itself, not through a migration: symlinks,
 * fifos, sockets and devices, hard-linked groups, and folders.
 *
 * Each move is a recreate-then-remove made under the namespace lock exclusive, so
 * no name operation sees the object on both datastores or on neither, and the
 * file's node follows it (node_rebind_file): a name the kernel has cached keeps
 * working and shows the new object. Owner (when the daemon is root), mode and
 * times go with it; extended attributes do not (README says so).
 *
 * A hard-linked group is regular data, possibly large: its copy is made before the
 * namespace lock is taken, while the file's gate is held exclusive (vfile.h), so no
 * I/O and no open of that file can happen during the copy, and nothing else
 * waits. Only then are its names switched, under the namespace lock. An open group
 * is refused: its handles would have to be moved as a migration's switch does, and
 * migrations move one name.
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
#include "evac_int.h"
#include "log.h"
#include "paths.h"

/* Give the object at path on datastore fd the owner, mode and times of st. */
static int shape_like(const struct store *s, int fd, const char *path, const struct stat *st)
{
	struct timespec ts[2] = { st->st_atim, st->st_mtim };

	if (s->root && bn_fchownat(fd, path, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISLNK(st->st_mode) && bn_fchmodat(fd, path, st->st_mode & 07777) < 0)
		return -errno;
	return bn_utimensat(fd, path, ts, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int create_like(int fd, const char *path, const struct stat *st, const char *target)
{
	if (S_ISLNK(st->st_mode))
		return bn_symlinkat(target, fd, path) < 0 ? -errno : 0;
	return bn_mknodat(fd, path, st->st_mode, st->st_rdev) < 0 ? -errno : 0;
}

/* Is the object at path on datastore fd what st (and target) describe? So it is
 * when a run was interrupted between recreating an object and removing the
 * original: the next run only removes the original. */
static bool same_there(int fd, const char *path, const struct stat *st, const char *target)
{
	char buf[PATH_MAX];
	struct stat d;
	ssize_t n;

	if (bn_fstatat(fd, path, &d, AT_SYMLINK_NOFOLLOW) < 0 ||
	    (d.st_mode & S_IFMT) != (st->st_mode & S_IFMT) || d.st_rdev != st->st_rdev)
		return false;
	if (!S_ISLNK(st->st_mode))
		return true;
	n = BN_AT(fd, path, (int)readlinkat(at_.fd, at_.name, buf, sizeof(buf) - 1));
	return n >= 0 && (buf[n] = 0, !strcmp(buf, target));
}

/* The node of the object at path on src, if the kernel knows it, now backed by the
 * object at the same path on dst. Under the namespace lock exclusive. */
static void follow_node(struct migs *g, int src, int dst, const char *path, int pinned_fd,
			const struct stat *old)
{
	struct node *n = node_pin_file(&g->ns->nodes, src, pinned_fd, old);
	int fd = bn_open(g->store->ds[dst].fd, path, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
	struct stat st;

	if (!n) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (fd >= 0 && fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0)
		fd = node_rebind_file(&g->ns->nodes, n, dst, fd, &st);	/* the old one back */
	if (fd >= 0)
		close(fd);
	node_unpin(&g->ns->nodes, n);
}

int evac_move_special(struct migs *g, struct evac_entry *e, int src, int dst)
{
	const struct store *s = g->store;
	int S = s->ds[src].fd, D = s->ds[dst].fd, ret, pin = -1;
	char parent[PATH_MAX], target[PATH_MAX] = "";
	struct stat st;

	vds_parent_path(e->path, parent, sizeof(parent));
	ns_lock_excl(g->ns);
	ret = bn_fstatat(S, e->path, &st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	if (!ret && (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode) || st.st_nlink > 1))
		ret = -ESTALE;	/* replaced since the walk: the next run sees it */
	if (!ret && S_ISLNK(st.st_mode)) {
		ssize_t n = BN_AT(S, e->path, (int)readlinkat(at_.fd, at_.name, target,
							      sizeof(target) - 1));
		ret = n < 0 ? -errno : 0;
		target[n > 0 ? n : 0] = 0;
	}
	if (!ret)
		ret = ns_mkpath(g->ns, dst, parent);
	if (!ret && same_there(D, e->path, &st, target))
		vds_log(LOG_NOTICE, "vdsfs: evacuate: %s is already on %s (an earlier run was "
			"interrupted); removing the copy on %s\n", e->path, s->ds[dst].name,
			s->ds[src].name);
	else if (!ret)
		ret = create_like(D, e->path, &st, target);
	if (!ret && (ret = shape_like(s, D, e->path, &st)) == 0 &&
	    (pin = bn_open(S, e->path, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0)) < 0)
		ret = -errno;
	if (!ret && bn_unlinkat(S, e->path, 0) < 0)
		ret = -errno;
	if (ret && ret != -EEXIST)
		bn_unlinkat(D, e->path, 0);	/* what we created, if anything */
	if (!ret)
		follow_node(g, src, dst, e->path, pin, &st);
	else if (pin >= 0)
		close(pin);
	ns_unlock(g->ns);
	if (ret)
		evac_set_msg(e, ret, "%s: %s", ret == -EEXIST ? "a name in the way on the "
			     "destination" : "recreating it on the destination", strerror(-ret));
	return ret;
}

/* Copy in to out (regular files), holes kept as holes, and make it durable. */
static int copy_data(int in, int out, off_t size)
{
	static const size_t chunk = 1 << 20;
	char *buf = malloc(chunk);
	off_t pos = 0;
	int ret = buf ? 0 : -ENOMEM;

	while (!ret && pos < size) {
		off_t data = lseek(in, pos, SEEK_DATA), hole;

		if (data < 0) {
			if (errno != ENXIO)
				ret = -errno;
			break;	/* the rest is a hole */
		}
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			hole = size;
		for (pos = data; !ret && pos < hole;) {
			ssize_t n = pread(in, buf, (size_t)(hole - pos) < chunk ? (size_t)(hole - pos) : chunk, pos);

			if (n <= 0) {
				ret = n < 0 ? -errno : 0;
				pos = hole;
				break;
			}
			if (pwrite(out, buf, n, pos) != n)
				ret = -EIO;
			pos += n;
		}
	}
	free(buf);
	if (!ret && ftruncate(out, size) < 0)
		ret = -errno;
	if (!ret && fsync(out) < 0)
		ret = -errno;
	return ret;
}

/* Link every name of the group on dst to the copy, then drop them on src. Under
 * the namespace lock exclusive; all or none. */
static int switch_names(struct migs *g, const struct evac_group *gr, int src, int dst,
			int copy_fd, const struct stat *was)
{
	const struct store *s = g->store;
	int S = s->ds[src].fd, D = s->ds[dst].fd, ret = 0;
	char parent[PATH_MAX], from[32];
	unsigned linked = 0;
	struct stat st;

	for (unsigned k = 0; !ret && k < gr->n; k++)
		if (bn_fstatat(S, gr->names[k], &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_ino != was->st_ino ||
		    st.st_nlink != gr->n || st.st_mtim.tv_sec != was->st_mtim.tv_sec ||
		    st.st_mtim.tv_nsec != was->st_mtim.tv_nsec || st.st_size != was->st_size)
			ret = -ESTALE;	/* renamed, relinked or written since the walk */
	fd_path(copy_fd, from);
	for (; !ret && linked < gr->n; linked++) {
		vds_parent_path(gr->names[linked], parent, sizeof(parent));
		ret = ns_mkpath(g->ns, dst, parent);
		if (!ret && bn_linkat_to(from, D, gr->names[linked]) < 0)
			ret = -errno;
		if (ret)
			break;
	}
	if (ret) {
		for (unsigned k = 0; k < linked; k++)
			bn_unlinkat(D, gr->names[k], 0);
		return ret;
	}
	for (unsigned k = 0; k < gr->n; k++)
		if (bn_unlinkat(S, gr->names[k], 0) < 0)
			vds_log(LOG_WARNING, "vdsfs: evacuate: removing %s from %s: %s\n",
				gr->names[k], s->ds[src].name, strerror(errno));
	return 0;
}

int evac_move_group(struct migs *g, struct evac_entry *e, const struct evac_group *gr,
		    int src, int dst)
{
	const struct store *s = g->store;
	char tmp[64];
	struct stat st;
	struct node *n = NULL;
	struct vfile *vf = NULL;
	int pin, in = -1, out = -1, ret = 0;

	ns_lock_shared(g->ns);
	pin = bn_open(s->ds[src].fd, gr->names[0], O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
	if (pin < 0 || fstatat(pin, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		ret = -errno;
	else if (!(n = node_pin_file(&g->ns->nodes, src, pin, &st)))
		ret = -ENOMEM;
	pin = -1;	/* the node owns it now (or it was closed) */
	ns_unlock(g->ns);
	if (!ret && S_ISREG(st.st_mode) && !(vf = vfile_get(g->ns, n)))
		ret = -ENOMEM;
	if (vf) {
		vfile_pause(vf);	/* no I/O, no open, no release until resume */
		lk_lock(&vf->hlock, LK_HANDLES);
		if (vf->nhandles)
			ret = -EBUSY;
		lk_unlock(&vf->hlock, LK_HANDLES);
	}
	if (!ret && !S_ISREG(st.st_mode))
		ret = -EOPNOTSUPP;
	snprintf(tmp, sizeof(tmp), "evac-%llu.tmp", (unsigned long long)st.st_ino);
	if (!ret && ((in = bn_open(s->ds[src].fd, gr->names[0], O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0)) < 0 ||
		     (out = openat(s->ds[dst].state_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0))
		ret = -errno;
	if (!ret)
		ret = copy_data(in, out, st.st_size);
	if (!ret && ((s->root && fchown(out, st.st_uid, st.st_gid) < 0) ||
		     fchmod(out, st.st_mode & 07777) < 0 ||
		     futimens(out, (struct timespec[2]){ st.st_atim, st.st_mtim }) < 0))
		ret = -errno;
	if (!ret) {
		ns_lock_excl(g->ns);
		ret = switch_names(g, gr, src, dst, out, &st);
		if (!ret) {
			int fd = openat(s->ds[dst].state_fd, tmp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			struct stat nst;

			if (fd >= 0 && fstat(fd, &nst) == 0)
				fd = node_rebind_file(&g->ns->nodes, n, dst, fd, &nst);
			if (fd >= 0)
				close(fd);
		}
		ns_unlock(g->ns);
	}
	if (out >= 0) {
		unlinkat(s->ds[dst].state_fd, tmp, 0);	/* the names hold it now, or nothing */
		close(out);
	}
	if (in >= 0)
		close(in);
	if (vf) {
		vfile_resume(vf);
		vfile_put(g->ns, vf);
	}
	if (n)
		node_unpin(&g->ns->nodes, n);
	if (ret)
		evac_set_msg(e, ret, "%s", ret == -EBUSY ? "hard-linked group is open; it moves "
			     "once closed (run evacuate again)" : ret == -EOPNOTSUPP ?
			     "hard-linked special files do not move" : ret == -ESTALE ?
			     "changed while it was copied; run evacuate again" : strerror(-ret));
	return ret;
}

static bool dir_empty(int dfd, const char *path)
{
	int fd = bn_open(dfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	bool empty = true;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	while (empty && (de = readdir(d)))
		empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
	closedir(d);
	return empty;
}

/* The datastore whose copy of folder path the union shows once src's is gone. */
static int next_copy(const struct store *s, int src, const char *path)
{
	struct stat st;

	for (int i = 0; i < s->nds; i++)
		if (i != src && store_live(s, i) &&
		    bn_fstatat(s->ds[i].fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
			return i;
	return -1;
}

size_t evac_sweep_dirs(struct migs *g, char **dirs, size_t n, int src, int dst)
{
	const struct store *s = g->store;
	size_t removed = 0;

	for (size_t i = n; i-- > 0;) {	/* children before their parents */
		struct stat st, shown;
		int next, ret = 0;

		ns_lock_excl(g->ns);
		if (bn_fstatat(s->ds[src].fd, dirs[i], &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode) || !dir_empty(s->ds[src].fd, dirs[i])) {
			ns_unlock(g->ns);
			continue;	/* still holds files being migrated */
		}
		next = next_copy(s, src, dirs[i]);
		if (next < 0) {
			ret = ns_mkpath(g->ns, dst, dirs[i]);	/* shaped like src's copy */
			next = dst;
		} else if (ns_find(g->ns, dirs[i], &shown) == src) {
			ret = shape_like(s, s->ds[next].fd, dirs[i], &st);	/* what users saw */
		}
		if (!ret && bn_unlinkat(s->ds[src].fd, dirs[i], AT_REMOVEDIR) == 0)
			removed++;
		ns_unlock(g->ns);
		if (ret)
			vds_log(LOG_WARNING, "vdsfs: evacuate: folder %s: %s\n", dirs[i], strerror(-ret));
	}
	return removed;
}
