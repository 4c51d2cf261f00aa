/* store.c - see store.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

int store_by_name(const struct store *s, const char *name)
{
	for (int i = 0; i < s->nds; i++)
		if (!strcmp(s->ds[i].name, name))
			return i;
	return -1;
}

int store_pick(const struct store *s)
{
	uint64_t avail[VDS_MAX_DS];
	bool usable[VDS_MAX_DS];

	for (int i = 0; i < s->nds; i++) {
		usable[i] = true;
		if (s->create == VDS_CREATE_MFS)
			usable[i] = ds_space(&s->ds[i], &avail[i], NULL) == 0;
	}
	return placement_pick(s->create, s->create_named, avail, usable, s->nds);
}

/* Its own open of the directory, never a dup of dfd: a dup shares the directory's
 * offset, so a second walk (or two at once) would find it already read to the end. */
static uint64_t held_below(int dfd, bool top, uint64_t *files)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	uint64_t sum = 0;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while ((de = readdir(d))) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    (top && !strcmp(de->d_name, VDS_STATE_DIR)) ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub >= 0) {
				sum += held_below(sub, false, files);
				close(sub);
			}
		} else if (S_ISREG(st.st_mode)) {
			sum += (uint64_t)st.st_blocks * 512;
			(*files)++;
		}
	}
	closedir(d);
	return sum;
}

uint64_t store_usage(const struct datastore *d, uint64_t *files)
{
	*files = 0;
	return held_below(d->fd, true, files);
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
