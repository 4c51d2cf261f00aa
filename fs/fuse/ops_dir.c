/* ops_dir.c - union directory listing.
 *
 * The first readdir of an open directory takes a snapshot of the merged listing:
 * every datastore's copy is read in datastore order and a name seen once hides its
 * later duplicates, exactly the rule lookup applies, so readdir and lookup always
 * agree on which object a name is. Offsets are indexes into the snapshot ("." is 1,
 * ".." is 2, ...). A rewind (offset 0 after entries were served) takes a fresh
 * snapshot, as POSIX asks. Not at opendir: reading the copies moves their atime,
 * and on a local filesystem opening a directory does not.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "beneath.h"
#include "vfs.h"

struct dent {
	char *name;
	uint64_t ino;
	unsigned char type;
};

struct dirsnap {
	struct dent *e;
	size_t n, cap;
	size_t *slots;		/* open-addressing set of indexes into e, for dedup */
	size_t nslots;
	bool built;
	bool served;
};

static uint64_t name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

static int snap_grow_set(struct dirsnap *d)
{
	size_t ns = d->nslots ? d->nslots * 2 : 64;
	size_t *slots = malloc(ns * sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < ns; i++)
		slots[i] = SIZE_MAX;
	for (size_t i = 0; i < d->n; i++) {
		size_t s = name_hash(d->e[i].name) & (ns - 1);

		while (slots[s] != SIZE_MAX)
			s = (s + 1) & (ns - 1);
		slots[s] = i;
	}
	free(d->slots);
	d->slots = slots;
	d->nslots = ns;
	return 0;
}

/* Adds name unless already present. */
static int snap_add(struct dirsnap *d, const char *name, uint64_t ino, unsigned char type)
{
	size_t s;

	if ((d->n + 1) * 2 > d->nslots && snap_grow_set(d))
		return -ENOMEM;
	for (s = name_hash(name) & (d->nslots - 1); d->slots[s] != SIZE_MAX;
	     s = (s + 1) & (d->nslots - 1))
		if (!strcmp(d->e[d->slots[s]].name, name))
			return 0;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 32;
		struct dent *e = realloc(d->e, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		d->e = e;
		d->cap = cap;
	}
	d->e[d->n] = (struct dent){ strdup(name), ino, type };
	if (!d->e[d->n].name)
		return -ENOMEM;
	d->slots[s] = d->n++;
	return 0;
}

static void snap_clear(struct dirsnap *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->e[i].name);
	free(d->e);
	free(d->slots);
	memset(d, 0, sizeof(*d));
}

static int snap_read_copy(struct vfs *v, struct dirsnap *d, int ds, const char *path,
			  bool top)
{
	int fd = bn_open(v->store->ds[ds].fd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
	struct dirent *de;
	DIR *dir;
	int ret = 0;

	if (fd < 0)
		return (errno == ENOENT || errno == ENOTDIR) ? 0 : -errno;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return -errno;
	}
	while (!ret && (de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (top && !strcmp(de->d_name, VDS_STATE_DIR))
			continue;
		ret = snap_add(d, de->d_name, node_st_ino(ds, de->d_ino), de->d_type);
	}
	closedir(dir);
	return ret;
}

static int snap_build(struct vfs *v, struct node *n, struct dirsnap *d)
{
	char path[PATH_MAX];
	int ret = node_dir_path(&v->ns->nodes, n, path, sizeof(path));

	snap_clear(d);
	ns_lock_shared(v->ns);
	for (int i = 0; !ret && i < v->store->nds; i++)
		if (store_live(v->store, i))
			ret = snap_read_copy(v, d, i, path, n == &v->ns->nodes.root);
	ns_unlock(v->ns);
	d->built = !ret;
	return ret;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dirsnap *d = calloc(1, sizeof(*d));

	(void)ino;
	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uintptr_t)d;
	if (fuse_reply_open(req, fi)) {
		snap_clear(d);
		free(d);
	}
}

/* Entry idx of the listing: 0 is ".", 1 is "..", then the snapshot. Dots need a
 * non-zero d_ino: readdir(3) silently drops entries whose inode number is 0. */
static const char *entry_name(struct node *dir, struct dirsnap *d, size_t idx,
			      struct stat *st)
{
	memset(st, 0, sizeof(*st));
	if (idx < 2) {
		st->st_mode = S_IFDIR;
		st->st_ino = (idx && dir->parent) ? dir->parent->st_ino : dir->st_ino;
		return idx ? ".." : ".";
	}
	st->st_ino = d->e[idx - 2].ino;
	st->st_mode = (mode_t)DTTOIF(d->e[idx - 2].type);
	return d->e[idx - 2].name;
}

static size_t add_plain(fuse_req_t req, char *buf, size_t room, const char *name,
			struct stat *st, off_t next)
{
	return fuse_add_direntry(req, buf, room, name, st, next);
}

/* readdirplus entry: a lookup reference is taken, and dropped again if it didn't fit. */
static size_t add_plus(fuse_req_t req, fuse_ino_t dir, char *buf, size_t room,
		       const char *name, struct stat *st, off_t next)
{
	struct vfs *v = req_vfs(req);
	struct fuse_entry_param e;
	size_t len;
	bool dot = !strcmp(name, ".") || !strcmp(name, "..");

	if (dot || vfs_entry(v, req_node(req, dir), name, &e)) {
		memset(&e, 0, sizeof(e));
		e.attr = *st;
	}
	len = fuse_add_direntry_plus(req, buf, room, name, &e, next);
	if (len > room && e.ino)
		node_forget(&v->ns->nodes, node_of(&v->ns->nodes, e.ino), 1);
	return len;
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi, bool plus)
{
	struct dirsnap *d = (struct dirsnap *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t pos = 0;
	int ret = buf ? 0 : -ENOMEM;

	if (!ret && (!d->built || (off == 0 && d->served)))
		ret = snap_build(req_vfs(req), req_node(req, ino), d);
	for (size_t i = off; !ret && i < d->n + 2; i++) {
		struct stat st;
		const char *name = entry_name(req_node(req, ino), d, i, &st);
		size_t len = plus ? add_plus(req, ino, buf + pos, size - pos, name, &st, i + 1)
				  : add_plain(req, buf + pos, size - pos, name, &st, i + 1);

		if (len > size - pos)
			break;
		pos += len;
	}
	d->served = true;
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_buf(req, buf, pos);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dirsnap *d = (struct dirsnap *)(uintptr_t)fi->fh;

	(void)ino;
	snap_clear(d);
	free(d);
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	struct vfs *v = req_vfs(req);
	char path[PATH_MAX];
	int ret = node_dir_path(&v->ns->nodes, req_node(req, ino), path, sizeof(path));

	(void)fi;
	for (int i = 0; !ret && i < v->store->nds; i++) {
		int fd = store_live(v->store, i) ?
			 bn_open(v->store->ds[i].fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0) : -1;

		if (fd < 0)
			continue;
		if ((datasync ? fdatasync(fd) : fsync(fd)) < 0)
			ret = -errno;
		close(fd);
	}
	fuse_reply_err(req, -ret);
}

void vds_ops_dir(struct fuse_lowlevel_ops *ops)
{
	ops->opendir = op_opendir;
	ops->readdir = op_readdir;
	ops->readdirplus = op_readdirplus;
	ops->releasedir = op_releasedir;
	ops->fsyncdir = op_fsyncdir;
}
