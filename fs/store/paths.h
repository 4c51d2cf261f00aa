/* paths.h - paths relative to a datastore, and fds turned back into paths.
 *
 * Every layer names a file on a datastore by its path relative to the datastore's
 * directory ("vm/disk", "." for the top); these are the few rules about such paths.
 */
#ifndef VDS_PATHS_H
#define VDS_PATHS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* A relative path inside the mount that cannot leave a datastore: no empty, "." or
 * ".." component, not absolute, no newline, shorter than PATH_MAX, not the state
 * folder (or below it). */
bool vds_path_sane(const char *p);

/* "a/b/c" -> "a/b", "c" -> ".": the directory a relative path lives in. */
void vds_parent_path(const char *path, char *out, size_t len);

/* /proc/self/fd/N: how an fd (an O_PATH one too) is turned back into a path for the
 * calls (chmod, utimes, xattrs, reopen) that have no fd form accepting it. */
static inline void fd_path(int fd, char buf[32])
{
	snprintf(buf, 32, "/proc/self/fd/%d", fd);
}

/* open(path, flags | O_NOATIME), or without O_NOATIME where the kernel refuses it
 * (only the owner or root may ask): the daemon's own reads of a file must not move
 * its atime, and where they must, nothing better can be done. */
int open_noatime(const char *path, int flags);

/* pwrite until all len bytes are written: len, or -errno (a short count only where
 * the file takes no more, such as a write past what a filesystem allows). */
ssize_t pwrite_all(int fd, const void *buf, size_t len, off_t off);

#endif
