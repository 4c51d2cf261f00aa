/* paths.h - how vdsctl turns a path as typed into a path relative to the mount root,
 * the form the control protocol takes. One rule for every command:
 *
 *   a relative path is relative to the current directory when that is inside the
 *   mount, else to the mount root; an absolute path must lie inside the mount.
 *   With -s and no -m the mount is unknown: every path is from the mount root.
 *
 * The work is textual, like the shell's `cd`: "." and ".." are folded, symlinks
 * are not followed here. The daemon resolves what it is sent beneath each datastore
 * (fs/store/beneath.h), so a symlink can never lead a request out of the mount, and a
 * path that names nothing gets its clear error there or from vdsctl's check.
 */
#ifndef VDSCTL_PATHS_H
#define VDSCTL_PATHS_H

#include <stddef.h>

struct mount_view {
	const char *root;	/* the mountpoint, canonical (realpath); NULL with -s only */
	const char *typed;	/* -m as typed, made absolute and folded: it may reach the
				 * mount through a symlink; NULL or root if not different */
	const char *cwd;	/* the current directory (getcwd), NULL if it failed */
};

/* Write arg's path relative to the mount root into out (len bytes), following the
 * rule above.
 *
 * Returns 0; -EXDEV when arg lies outside the mount (or climbs out of it with
 * ".."); -EISDIR when it names the mount root itself, which no command acts on;
 * -ENOENT when arg is relative, the mount is known and the current directory is
 * not (getcwd failed: it may have been removed); -ENAMETOOLONG when out is too
 * small; -EINVAL for an empty arg. On error err holds one line naming arg. */
int mount_relpath(const struct mount_view *mv, const char *arg, char *out, size_t len,
		  char *err, size_t errlen);

/* Fold an absolute path textually ("//a/./b/../c/" -> "/a/c"; "/.." is "/") into out.
 * Returns 0, -EINVAL if path is not absolute, -ENAMETOOLONG if out is too small. */
int path_fold(const char *path, char *out, size_t len);

#endif
