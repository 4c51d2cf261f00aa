/* lookup.c - resolving names across datastores, and placing new ones.
 *
 * A name resolves to the first datastore (in the order given on the command line)
 * where it exists. For a regular file that is its only home; for a directory the
 * first copy supplies the attributes and the others only add entries to readdir.
 * New objects go where the create policy says; their parent directory is created
 * there on demand, copying mode, owner and times from an existing copy, so the union
 * looks the same whichever datastore a name lands on.
 *
 * Paths are relative to a datastore's directory fd and resolve beneath it
 * (beneath.h): a symlink on one datastore where another has a directory is no way
 * out of the datastores.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "mig.h"
#include "placement.h"
#include "vfile.h"
#include "vdsfs.h"

/* A symlink on the way (ELOOP, see beneath.h) means the path is not on that
 * datastore, like a file on the way (ENOTDIR). */
int vds_find(struct vds *v, const char *path, struct stat *st)
{
	for (int i = 0; i < v->nds; i++)
		if (bn_fstatat(v->ds[i].fd, path, st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (!mig_hides(v, i, st))	/* a migrated file's stale source */
				return i;
		} else if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP) {
			return -errno;
		}
	return -ENOENT;
}

int vds_stat_node(struct vds *v, struct node *n, struct stat *st)
{
	char path[PATH_MAX];
	int ret;

	if (!n->is_dir) {
		struct vfile *vf = vfile_hold(n);

		ret = fstatat(n->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
		if (!ret && vf && vf->mig)
			mig_fix_stat(vf->mig, st);
		vfile_unhold(v, vf);
		if (ret)
			return ret;
	} else {
		ret = node_dir_path(&v->nodes, n, path, sizeof(path));
		if (ret)
			return ret;
		ret = vds_find(v, path, st);
		if (ret < 0)
			return ret;
	}
	st->st_ino = n->st_ino;
	return 0;
}

void vds_fill_entry(struct vds *v, struct node *n, const struct stat *st,
		    struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = node_id(&v->nodes, n);
	e->attr = *st;
	e->attr.st_ino = n->st_ino;
	e->attr_timeout = v->opts.timeout;
	e->entry_timeout = v->opts.timeout;
}

static struct node *ref_backing(struct vds *v, struct node *parent, const char *name,
				const char *path, int ds, const struct stat *st)
{
	struct stat st2;
	int fd;

	if (S_ISDIR(st->st_mode))
		return node_ref_dir(&v->nodes, parent, name, node_st_ino(ds, st->st_ino));
	fd = bn_open(v->ds[ds].fd, path, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	/* The name may have been replaced between stat and open: trust the fd. */
	if (fstatat(fd, "", &st2, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ||
	    S_ISDIR(st2.st_mode)) {
		close(fd);
		errno = ESTALE;
		return NULL;
	}
	return node_ref_file(&v->nodes, ds, fd, &st2);
}

/* Resolve parent/name and take a kernel reference on its node (nlookup + 1). */
int vds_entry(struct vds *v, struct node *parent, const char *name, struct fuse_entry_param *e)
{
	char path[PATH_MAX];
	struct stat st;
	struct node *n;
	int ds, ret;

	if (name_hidden(v, parent, name))
		return -ENOENT;
	ret = node_child_path(&v->nodes, parent, name, path, sizeof(path));
	if (ret)
		return ret;
	pthread_rwlock_rdlock(&v->ns_lock);
	ds = vds_find(v, path, &st);
	n = ds < 0 ? NULL : ref_backing(v, parent, name, path, ds, &st);
	ret = ds < 0 ? ds : n ? 0 : errno ? -errno : -ENOMEM;
	pthread_rwlock_unlock(&v->ns_lock);
	if (ret)
		return ret;
	/* What the file reads as now: a migrating file's size and times are its
	 * overlay's, and lookup and readdirplus replies overwrite what the kernel
	 * caches just as getattr replies do. */
	if (!n->is_dir && (ret = vds_stat_node(v, n, &st))) {
		node_forget(&v->nodes, n, 1);
		return ret;
	}
	vds_fill_entry(v, n, &st, e);
	return 0;
}

int vds_pick_ds(struct vds *v)
{
	uint64_t avail[VDS_MAX_DS];
	bool usable[VDS_MAX_DS];

	for (int i = 0; i < v->nds; i++) {
		usable[i] = true;
		if (v->opts.create == VDS_CREATE_MFS)
			usable[i] = ds_space(&v->ds[i], &avail[i], NULL) == 0;
	}
	return placement_pick(v->opts.create, v->create_named, avail, usable, v->nds);
}

/* Create one missing directory on datastore ds, shaped like its copy elsewhere. */
static int clone_dir(struct vds *v, int ds, const char *path)
{
	struct stat st;
	int src = vds_find(v, path, &st);
	struct timespec ts[2];

	if (src < 0)
		return src;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (bn_mkdirat(v->ds[ds].fd, path, st.st_mode & 07777) < 0)
		return errno == EEXIST ? 0 : -errno;
	if (v->root && bn_fchownat(v->ds[ds].fd, path, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	bn_fchmodat(v->ds[ds].fd, path, st.st_mode & 07777);	/* undo umask/setgid quirks */
	ts[0] = st.st_atim;
	ts[1] = st.st_mtim;
	bn_utimensat(v->ds[ds].fd, path, ts, AT_SYMLINK_NOFOLLOW);
	return 0;
}

/* mkdir -p of a directory path ("." is the root) on datastore ds. */
int vds_mkpath(struct vds *v, int ds, const char *dirpath)
{
	char buf[PATH_MAX];
	struct stat st;
	int ret;

	if (!strcmp(dirpath, "."))
		return 0;
	if (bn_fstatat(v->ds[ds].fd, dirpath, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
	if (strlen(dirpath) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, dirpath);
	for (char *p = buf;; p++) {
		if (*p != '/' && *p)
			continue;
		char c = *p;
		*p = 0;
		ret = clone_dir(v, ds, buf);
		if (ret)
			return ret;
		if (!c)
			return 0;
		*p = c;
	}
}

/* New objects belong to the caller. In a setgid directory the group was already
 * inherited from it by the backing filesystem, exactly as a local mkdir would. */
void vds_set_owner(struct vds *v, fuse_req_t req, int ds, const char *path,
		   const struct stat *parent_st)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	gid_t gid = (parent_st && (parent_st->st_mode & S_ISGID)) ? (gid_t)-1 : ctx->gid;

	if (!v->root)
		return;
	if (bn_fchownat(v->ds[ds].fd, path, ctx->uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		fuse_log(FUSE_LOG_WARNING, "vdsfs: chown %s on %s: %s\n", path, v->ds[ds].name,
			 strerror(errno));
}

/* A relative path inside the mount that cannot leave a datastore: no empty, "." or
 * ".." component, not absolute, no newline, not the state folder. */
bool vds_path_sane(const char *p)
{
	if (!p || !*p || *p == '/' || strlen(p) >= PATH_MAX || strchr(p, '\n'))
		return false;
	for (const char *s = p;;) {
		size_t l = strcspn(s, "/");

		if (l == 0 || (l == 1 && s[0] == '.') || (l == 2 && !strncmp(s, "..", 2)))
			return false;
		if (s == p && l == strlen(VDS_STATE_DIR) && !strncmp(s, VDS_STATE_DIR, l))
			return false;
		if (!s[l])
			return true;
		s += l + 1;
	}
}

/* Like vds_find, for paths that come from outside the kernel (control requests):
 * stricter, since no component may be a symlink, the last one included. */
int vds_find_beneath(struct vds *v, const char *path, struct stat *st)
{
	if (!vds_path_sane(path))
		return -EINVAL;
	for (int i = 0; i < v->nds; i++) {
		int fd = bn_open(v->ds[i].fd, path, O_PATH | O_CLOEXEC, 0);
		int ret;

		if (fd < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				continue;
			return errno == ELOOP || errno == EXDEV ? -EINVAL : -errno;
		}
		ret = fstat(fd, st) < 0 ? -errno : i;
		close(fd);
		if (ret >= 0 && mig_hides(v, i, st))
			continue;
		return ret;
	}
	return -ENOENT;
}

/* A name was added to or removed from the copy of union directory dirpath on the
 * datastores in mask. The union shows the attributes of the first copy (vds_find),
 * which the backing filesystem only updated if it is one of them; otherwise its
 * mtime and ctime are set here, so the directory the user sees changes as a local
 * one would. */
void vds_dir_changed(struct vds *v, uint64_t mask, const char *dirpath)
{
	static const struct timespec now[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_NOW } };
	struct stat st;
	int shown = vds_find(v, dirpath, &st);

	if (shown < 0 || !S_ISDIR(st.st_mode) || (mask & (1ull << shown)))
		return;
	if (bn_utimensat(v->ds[shown].fd, dirpath, now, AT_SYMLINK_NOFOLLOW) < 0)
		fuse_log(FUSE_LOG_WARNING, "vdsfs: updating the times of %s on %s: %s\n", dirpath,
			 v->ds[shown].name, strerror(errno));
}

/* "a/b/c" -> "a/b", "c" -> ".": the directory a relative path lives in. */
void vds_parent_path(const char *path, char *out, size_t len)
{
	const char *s = strrchr(path, '/');

	snprintf(out, len, "%.*s", s ? (int)(s - path) : 1, s ? path : ".");
}
