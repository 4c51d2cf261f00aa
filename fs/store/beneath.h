/* beneath.h - *at() calls whose path may not leave the directory it is relative to.
 *
 * Paths under a datastore have several components ("vm/a/disk"). A plain *at() call
 * follows a symlink in any component but the last, so a symlink on one datastore
 * ("vm" -> /etc, behind a real "vm" directory on another) would lead out of it:
 * lookups would find, and creates would write, files outside every datastore. Each
 * call here opens the parent directory first, with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS) (or, on kernels without openat2, a walk that opens each
 * component O_NOFOLLOW), and then acts on the last component alone. What happens
 * to a symlink in the last component stays the caller's choice, as with the plain
 * call (AT_SYMLINK_NOFOLLOW, O_NOFOLLOW); bn_open refuses to follow one at all.
 *
 * Same conventions as the system calls they wrap: -1 and errno on failure. A
 * symlink or ".." on the way fails with ELOOP or EXDEV.
 */
#ifndef VDS_BENEATH_H
#define VDS_BENEATH_H

#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

struct bn_at {
	int fd;			/* the parent directory */
	const char *name;	/* the last component of the path */
	bool owned;		/* fd was opened here */
};

int bn_parent(int dirfd, const char *path, struct bn_at *at);
void bn_done(struct bn_at *at);
int bn_open(int dirfd, const char *path, int flags, mode_t mode);
int bn_renameat2(int ofd, const char *old, int nfd, const char *new, unsigned flags);
int bn_walk_open(int dirfd, const char *path, int flags, mode_t mode);	/* no-openat2 path */

/* Runs call with at_ set up for (dfd, path); keeps the call's errno. */
#define BN_AT(dfd, path, call) ({				\
	struct bn_at at_;					\
	int r_ = bn_parent(dfd, path, &at_);			\
	if (!r_)						\
		r_ = (call);					\
	bn_done(&at_);						\
	r_;							\
})

static inline int bn_fstatat(int dfd, const char *path, struct stat *st, int flags)
{
	return BN_AT(dfd, path, fstatat(at_.fd, at_.name, st, flags));
}

static inline int bn_mkdirat(int dfd, const char *path, mode_t mode)
{
	return BN_AT(dfd, path, mkdirat(at_.fd, at_.name, mode));
}

static inline int bn_unlinkat(int dfd, const char *path, int flags)
{
	return BN_AT(dfd, path, unlinkat(at_.fd, at_.name, flags));
}

static inline int bn_symlinkat(const char *target, int dfd, const char *path)
{
	return BN_AT(dfd, path, symlinkat(target, at_.fd, at_.name));
}

static inline int bn_mknodat(int dfd, const char *path, mode_t mode, dev_t dev)
{
	return BN_AT(dfd, path, mknodat(at_.fd, at_.name, mode, dev));
}

static inline int bn_fchownat(int dfd, const char *path, uid_t uid, gid_t gid, int flags)
{
	return BN_AT(dfd, path, fchownat(at_.fd, at_.name, uid, gid, flags));
}

static inline int bn_fchmodat(int dfd, const char *path, mode_t mode)
{
	return BN_AT(dfd, path, fchmodat(at_.fd, at_.name, mode, 0));
}

static inline int bn_utimensat(int dfd, const char *path, const struct timespec ts[2], int flags)
{
	return BN_AT(dfd, path, utimensat(at_.fd, at_.name, ts, flags));
}

/* linkat(from an fd's /proc path, to a path beneath dfd) */
static inline int bn_linkat_to(const char *from, int dfd, const char *path)
{
	return BN_AT(dfd, path, linkat(AT_FDCWD, from, at_.fd, at_.name, AT_SYMLINK_FOLLOW));
}

#endif
