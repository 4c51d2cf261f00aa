/* store.c - see store.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"
#include "store.h"

/* A fresh open of the folder, not a dup: a dup shares the file offset, and a walk
 * would leave the datastore's own fd at its end for the next one. */
static int reopen_dir(int dfd)
{
	return openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int store_by_name(const struct store *s, const char *name)
{
	for (int i = 0; i < s->nds; i++)
		if (store_live(s, i) && !strcmp(s->ds[i].name, name))
			return i;
	return -1;
}

int store_pick(const struct store *s)
{
	uint64_t avail[VDS_MAX_DS];
	bool usable[VDS_MAX_DS];

	int n = s->nds;

	for (int i = 0; i < n; i++) {
		usable[i] = store_open_for_new(s, i);
		avail[i] = 0;
		if (usable[i] && s->create == VDS_CREATE_MFS)
			usable[i] = ds_space(&s->ds[i], &avail[i], NULL) == 0;
	}
	return placement_pick(s->create, s->create_named, avail, usable, n);
}

int store_add(struct store *s, const char *name, const char *canon, char *err, size_t len)
{
	char *paths[VDS_MAX_DS];
	const char *names[VDS_MAX_DS];
	int n = 0, i = s->nds, ret;

	if (i >= VDS_MAX_DS)
		return vds_err(err, len, -ENOSPC, "datastore %s: a mount has at most %d datastore "
			       "slots (VDS_MAX_DS), removed datastores included; remount to free "
			       "theirs", name, VDS_MAX_DS);
	for (int j = 0; j < i; j++)
		if (store_live(s, j)) {
			paths[n] = s->ds[j].path;
			names[n++] = s->ds[j].name;
		}
	paths[n] = (char *)canon;
	names[n++] = name;
	ret = ds_check_layout(paths, names, n, s->mountpoint, err, len);
	if (!ret)
		ret = ds_open(&s->ds[i], name, canon, err, len);
	if (ret) {
		ds_close(&s->ds[i]);
		return ret;
	}
	atomic_store(&s->gone[i], false);
	atomic_store(&s->maint[i], false);
	atomic_store(&s->nds, i + 1);	/* publish (rule 2) */
	return i;
}

void store_remove(struct store *s, int i)
{
	struct datastore *d = &s->ds[i];

	atomic_store(&s->gone[i], true);
	/* The lock goes now, the directory fds at store_close (rule 4). */
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	d->lock_fd = -1;
}

/* One walk for every question asked of a datastore's tree: objects by kind and the
 * bytes its regular files hold. Its own open of each directory, never a dup: a dup
 * shares the directory's offset, so a second walk (or two at once) would find it
 * already read to the end. limit: stop once that many objects were seen (0: all). */
static void count_below(int dfd, bool top, uint64_t limit, struct store_count *c)
{
	int fd = reopen_dir(dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d)) && (!limit || c->files + c->others + c->dirs < limit)) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    (top && !strcmp(de->d_name, VDS_STATE_DIR)) ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			c->dirs++;
			if (sub >= 0) {
				count_below(sub, false, limit, c);
				close(sub);
			}
		} else if (S_ISREG(st.st_mode)) {
			c->files++;
			c->held += (uint64_t)st.st_blocks * 512;
		} else {
			c->others++;
		}
	}
	closedir(d);
}

void store_count(const struct datastore *d, uint64_t limit, struct store_count *c)
{
	memset(c, 0, sizeof(*c));
	count_below(d->fd, true, limit, c);
}

uint64_t store_usage(const struct datastore *d, uint64_t *files)
{
	struct store_count c;

	store_count(d, 0, &c);
	*files = c.files;
	return c.held;
}

uint64_t store_held_bytes(const struct datastore *d)
{
	uint64_t files;

	return store_usage(d, &files);
}

void store_close(struct store *s)
{
	for (int i = 0; i < s->nds; i++)
		ds_close(&s->ds[i]);
	s->nds = 0;
}
