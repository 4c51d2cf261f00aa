/* dsspec.h - datastores as users name them: NAME=PATH, several joined by ':' in one
 * argument (what mount.fuse3 and fstab pass as SOURCE) or given as separate
 * arguments; vdsfs and vds-copy take both, through this one parser.
 *
 * A name is 1-VDS_NAME_MAX of [A-Za-z0-9_-]: it appears in control requests, status
 * output and vds-copy's SRC:relpath=DST jobs, so it must never hold '=', ':' or '/'.
 * A path cannot hold ':'. At most VDS_MAX_DS datastores: the daemon keeps them in
 * fixed tables, and more is refused with a message that says so.
 */
#ifndef VDS_DSSPEC_H
#define VDS_DSSPEC_H

#include <stdbool.h>
#include <stddef.h>

#define VDS_MAX_DS	64
#define VDS_NAME_MAX	32

struct vds_ds_spec {
	char name[VDS_NAME_MAX + 1];
	char *path;		/* as given, malloc'd; the caller canonicalises it */
};

/* True if the n bytes at s are a valid datastore name. */
bool vds_ds_name_ok(const char *s, size_t n);

/* Append the datastores of arg ("A=/x" or "A=/x:B=/y") to ds[*n...], an array with
 * room for VDS_MAX_DS entries. Call once per argument; a name already in ds[0..*n)
 * from an earlier argument is refused like one repeated inside arg.
 *
 * Returns 0; -EINVAL for a bad spec, a bad or repeated name, an empty path or too
 * many datastores; -ENOMEM. On error err holds one line; entries appended before
 * the bad one stay counted in *n, so the caller frees all of ds[0..*n) either way
 * (vds_ds_free). */
int vds_ds_parse(struct vds_ds_spec *ds, int *n, const char *arg, char *err, size_t errlen);

/* Index of the datastore called name (len bytes, no NUL needed) in ds[0..n), or -1. */
int vds_ds_find(const struct vds_ds_spec *ds, int n, const char *name, size_t len);

/* Free the paths of ds[0..n) and set them to NULL. */
void vds_ds_free(struct vds_ds_spec *ds, int n);

#endif
