/* mountinfo.h - questions answered from /proc/self/mountinfo.
 *
 * Parsing (libmount's) takes a FILE so the unit tests can feed it text. Mount
 * points in the table escape space, tab, newline and backslash as octal (\040);
 * libmount decodes them before any comparison.
 */
#ifndef VDS_MOUNTINFO_H
#define VDS_MOUNTINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The type of the filesystem path lives on (the mount point that is its longest
 * prefix), or with exact only the one mounted at path itself. Returns 0, or -ENOENT
 * when nothing matches (-ENOMEM, -EINVAL: the table could not be read). */
int mountinfo_type(FILE *f, const char *path, bool exact, char *type, size_t len);

/* The same on this process's table; "?" when it cannot be read. */
void mount_type_of(const char *path, bool exact, char *type, size_t len);

#endif
