/* beneath.c - resolve a datastore path's parent without leaving the datastore.
 *
 * The design and the rules are in beneath.h. The fast path is one openat2; the walk
 * is for kernels older than 5.6, where it gives the same guarantee one component at
 * a time (O_NOFOLLOW | O_DIRECTORY on each, ".." refused outright).
 */
#include <errno.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "beneath.h"

#define BN_RESOLVE (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

static bool have_openat2 = true;	/* cleared once on ENOSYS; a benign race */

/* One directory component, with openat2's answers: ELOOP for a symlink. */
static int open_dir_step(int fd, const char *name)
{
	struct stat st;
	int next = openat(fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	int err;

	if (next < 0)
		return -1;
	err = fstat(next, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? 0 :
	      S_ISLNK(st.st_mode) ? ELOOP : ENOTDIR;
	if (!err)
		return next;
	close(next);
	errno = err;
	return -1;
}

int bn_walk_open(int dirfd, const char *path, int flags, mode_t mode)
{
	char buf[PATH_MAX];
	char *s = buf, *slash;
	int fd = dirfd;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return errno = ENAMETOOLONG, -1;
	while (1) {
		int next;

		slash = strchr(s, '/');
		if (slash)
			*slash = 0;
		if (!strcmp(s, ".."))
			next = (errno = EXDEV, -1);
		else if (slash)
			next = open_dir_step(fd, s);
		else
			next = openat(fd, s, flags | O_NOFOLLOW, mode);
		if (fd != dirfd) {
			int e = errno;

			close(fd);
			errno = e;
		}
		if (next < 0 || !slash)
			return next;
		fd = next;
		s = slash + 1;
	}
}

int bn_open(int dirfd, const char *path, int flags, mode_t mode)
{
	struct open_how how = { .flags = (unsigned)flags, .resolve = BN_RESOLVE };
	int fd;

	if (flags & (O_CREAT | O_TMPFILE))
		how.mode = mode & 07777;	/* openat2 refuses file-type bits; FUSE sends them */
	if (have_openat2) {
		fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
		if (fd >= 0 || errno != ENOSYS)
			return fd;
		have_openat2 = false;
	}
	return bn_walk_open(dirfd, path, flags, mode);
}

int bn_parent(int dirfd, const char *path, struct bn_at *at)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];

	at->fd = dirfd;
	at->name = slash ? slash + 1 : path;
	at->owned = false;
	if (!strcmp(at->name, ".."))
		return errno = EXDEV, -1;
	if (!slash)
		return 0;
	if ((size_t)(slash - path) >= sizeof(dir))
		return errno = ENAMETOOLONG, -1;
	memcpy(dir, path, slash - path);
	dir[slash - path] = 0;
	at->fd = bn_open(dirfd, dir, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
	at->owned = at->fd >= 0;
	return at->fd < 0 ? -1 : 0;
}

void bn_done(struct bn_at *at)
{
	int e = errno;

	if (at->owned)
		close(at->fd);
	at->owned = false;
	errno = e;
}

int bn_renameat2(int ofd, const char *old, int nfd, const char *new, unsigned flags)
{
	struct bn_at a, b;
	int ret = bn_parent(ofd, old, &a);

	if (!ret) {
		ret = bn_parent(nfd, new, &b);
		if (!ret)
			ret = renameat2(a.fd, a.name, b.fd, b.name, flags);
		bn_done(&b);
	}
	bn_done(&a);
	return ret;
}
