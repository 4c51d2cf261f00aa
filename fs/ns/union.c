/* union.c - names across datastores (ns.h): resolving, entries, new directories.
 *
 * Paths are relative to a datastore's directory fd and resolve beneath it
 * (beneath.h): a symlink on one datastore where another has a directory is no way
 * out of the datastores.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "log.h"
#include "ns.h"
#include "paths.h"
#include "vfile.h"

int ns_init(struct ns *ns, struct store *s)
{
	memset(ns, 0, sizeof(*ns));
	ns->store = s;
	pthread_rwlock_init(&ns->lock, NULL);
	pthread_mutex_init(&ns->hide_lock, NULL);
	node_table_init(&ns->nodes);
	return 0;
}

void ns_destroy(struct ns *ns)
{
	vfile_teardown_all(ns);
	node_table_destroy(&ns->nodes);
	free(ns->hidden);
	pthread_mutex_destroy(&ns->hide_lock);
	pthread_rwlock_destroy(&ns->lock);
}

bool ns_name_hidden(struct ns *ns, struct node *parent, const char *name)
{
	return parent == &ns->nodes.root && !strcmp(name, VDS_STATE_DIR);
}

static bool hidden(struct ns *ns, int ds, const struct stat *st)
{
	bool hide = false;

	if (!atomic_load(&ns->nhidden))
		return false;
	lk_lock(&ns->hide_lock, LK_LEAF);
	for (size_t i = 0; i < atomic_load(&ns->nhidden) && !hide; i++)
		hide = ns->hidden[i].ds == ds && ns->hidden[i].dev == st->st_dev &&
		       ns->hidden[i].ino == st->st_ino;
	lk_unlock(&ns->hide_lock, LK_LEAF);
	return hide;
}

int ns_hide(struct ns *ns, int ds, dev_t dev, ino_t ino)
{
	size_t n;
	int ret = 0;

	lk_lock(&ns->hide_lock, LK_LEAF);
	n = atomic_load(&ns->nhidden);
	if (n == ns->hidden_cap) {
		size_t cap = ns->hidden_cap ? ns->hidden_cap * 2 : 8;
		struct ns_hidden *h = realloc(ns->hidden, cap * sizeof(*h));

		if (h) {
			ns->hidden = h;
			ns->hidden_cap = cap;
		} else {
			ret = -ENOMEM;
		}
	}
	if (!ret) {
		ns->hidden[n] = (struct ns_hidden){ ds, dev, ino };
		atomic_store(&ns->nhidden, n + 1);
	}
	lk_unlock(&ns->hide_lock, LK_LEAF);
	return ret;
}

void ns_unhide(struct ns *ns, int ds, dev_t dev, ino_t ino)
{
	lk_lock(&ns->hide_lock, LK_LEAF);
	size_t n = atomic_load(&ns->nhidden);
	for (size_t i = 0; i < n; i++)
		if (ns->hidden[i].ds == ds && ns->hidden[i].dev == dev && ns->hidden[i].ino == ino) {
			ns->hidden[i] = ns->hidden[n - 1];
			atomic_store(&ns->nhidden, n - 1);
			break;
		}
	lk_unlock(&ns->hide_lock, LK_LEAF);
}

/* A symlink on the way (ELOOP, see beneath.h) means the path is not on that
 * datastore, like a file on the way (ENOTDIR). */
int ns_find(struct ns *ns, const char *path, struct stat *st)
{
	const struct store *s = ns->store;

	for (int i = 0; i < s->nds; i++)
		if (!store_live(s, i))
			continue;
		else if (bn_fstatat(s->ds[i].fd, path, st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (!hidden(ns, i, st))
				return i;
		} else if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP) {
			return -errno;
		}
	return -ENOENT;
}

int ns_find_beneath(struct ns *ns, const char *path, struct stat *st)
{
	const struct store *s = ns->store;

	if (!vds_path_sane(path))
		return -EINVAL;
	for (int i = 0; i < s->nds; i++) {
		int fd, ret;

		if (!store_live(s, i))
			continue;
		fd = bn_open(s->ds[i].fd, path, O_PATH | O_CLOEXEC, 0);
		if (fd < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				continue;
			return errno == ELOOP || errno == EXDEV ? -EINVAL : -errno;
		}
		ret = fstat(fd, st) < 0 ? -errno : i;
		close(fd);
		if (ret >= 0 && hidden(ns, i, st))
			continue;
		return ret;
	}
	return -ENOENT;
}

int ns_stat_node(struct ns *ns, struct node *n, struct stat *st)
{
	char path[PATH_MAX];
	int ret;

	if (!n->is_dir) {
		struct vfile *vf = vfile_hold(ns, n);

		ret = fstatat(n->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
		if (!ret && vf)
			vfile_fix_stat(vf, st);
		vfile_unhold(ns, vf);
		if (ret)
			return ret;
	} else {
		ret = node_dir_path(&ns->nodes, n, path, sizeof(path));
		if (ret)
			return ret;
		ret = ns_find(ns, path, st);
		if (ret < 0)
			return ret;
	}
	st->st_ino = n->st_ino;
	return 0;
}

static struct node *ref_backing(struct ns *ns, struct node *parent, const char *name,
				const char *path, int ds, const struct stat *st)
{
	struct stat st2;
	int fd;

	if (S_ISDIR(st->st_mode))
		return node_ref_dir(&ns->nodes, parent, name, node_st_ino(ds, st->st_ino));
	fd = bn_open(ns->store->ds[ds].fd, path, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	/* The name may have been replaced between stat and open: trust the fd. */
	if (fstatat(fd, "", &st2, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ||
	    S_ISDIR(st2.st_mode)) {
		close(fd);
		errno = ESTALE;
		return NULL;
	}
	return node_ref_file(&ns->nodes, ds, fd, &st2);
}

int ns_entry(struct ns *ns, struct node *parent, const char *name, struct node **out,
	     struct stat *st)
{
	char path[PATH_MAX];
	struct node *n;
	int ds, ret;

	if (ns_name_hidden(ns, parent, name))
		return -ENOENT;
	ret = node_child_path(&ns->nodes, parent, name, path, sizeof(path));
	if (ret)
		return ret;
	ns_lock_shared(ns);
	ds = ns_find(ns, path, st);
	errno = 0;
	n = ds < 0 ? NULL : ref_backing(ns, parent, name, path, ds, st);
	ret = ds < 0 ? ds : n ? 0 : errno ? -errno : -ENOMEM;
	ns_unlock(ns);
	if (ret)
		return ret;
	/* What the file reads as now: a routed file's size and times are its route's,
	 * and lookup and readdirplus replies overwrite what the kernel caches just as
	 * getattr replies do. */
	if (!n->is_dir && (ret = ns_stat_node(ns, n, st))) {
		node_forget(&ns->nodes, n, 1);
		return ret;
	}
	st->st_ino = n->st_ino;
	*out = n;
	return 0;
}

/* Create one missing directory on datastore ds, shaped like its copy elsewhere. */
static int clone_dir(struct ns *ns, int ds, const char *path)
{
	const struct store *s = ns->store;
	struct stat st;
	int src = ns_find(ns, path, &st);
	struct timespec ts[2];

	if (src < 0)
		return src;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (bn_mkdirat(s->ds[ds].fd, path, st.st_mode & 07777) < 0)
		return errno == EEXIST ? 0 : -errno;
	if (s->root && bn_fchownat(s->ds[ds].fd, path, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	/* Undo what umask and a setgid parent made of the mode, and give it the
	 * copy's times. Both are cosmetic where the union shows another copy: a
	 * failure is logged, not worth failing the create that needed the folder. */
	ts[0] = st.st_atim;
	ts[1] = st.st_mtim;
	if (bn_fchmodat(s->ds[ds].fd, path, st.st_mode & 07777) < 0 ||
	    bn_utimensat(s->ds[ds].fd, path, ts, AT_SYMLINK_NOFOLLOW) < 0)
		vds_log(LOG_WARNING, "vdsfs: shaping the new folder %s on %s like its copy: %s\n",
			path, s->ds[ds].name, strerror(errno));
	return 0;
}

int ns_mkpath(struct ns *ns, int ds, const char *dirpath)
{
	char buf[PATH_MAX];
	struct stat st;
	int ret;

	if (!strcmp(dirpath, "."))
		return 0;
	if (bn_fstatat(ns->store->ds[ds].fd, dirpath, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
	if (strlen(dirpath) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, dirpath);
	for (char *p = buf;; p++) {
		if (*p != '/' && *p)
			continue;
		char c = *p;
		*p = 0;
		ret = clone_dir(ns, ds, buf);
		if (ret)
			return ret;
		if (!c)
			return 0;
		*p = c;
	}
}

void ns_set_owner(struct ns *ns, int ds, const char *path, uid_t uid, gid_t gid,
		  const struct stat *parent_st)
{
	const struct store *s = ns->store;

	if (!s->root)
		return;
	if (parent_st && (parent_st->st_mode & S_ISGID))
		gid = (gid_t)-1;
	if (bn_fchownat(s->ds[ds].fd, path, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		vds_log(LOG_WARNING, "vdsfs: chown %s on %s: %s\n", path, s->ds[ds].name,
			strerror(errno));
}

void ns_dir_changed(struct ns *ns, uint64_t mask, const char *dirpath)
{
	static const struct timespec now[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_NOW } };
	const struct store *s = ns->store;
	struct stat st;
	int shown = ns_find(ns, dirpath, &st);

	if (shown < 0 || !S_ISDIR(st.st_mode) || (mask & VDS_DS_BIT(shown)))
		return;
	if (bn_utimensat(s->ds[shown].fd, dirpath, now, AT_SYMLINK_NOFOLLOW) < 0)
		vds_log(LOG_WARNING, "vdsfs: updating the times of %s on %s: %s\n", dirpath,
			s->ds[shown].name, strerror(errno));
}
