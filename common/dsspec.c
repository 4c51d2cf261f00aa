/* dsspec.c - see dsspec.h. Byte classes are spelled out, not <ctype.h>, so that a
 * locale never changes which names are valid. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsspec.h"
#include "errmsg.h"

bool vds_ds_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > VDS_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

int vds_ds_find(const struct vds_ds_spec *ds, int n, const char *name, size_t len)
{
	for (int i = 0; i < n; i++)
		if (strlen(ds[i].name) == len && !memcmp(ds[i].name, name, len))
			return i;
	return -1;
}

/* One NAME=PATH: the bytes [p, end). */
static int parse_one(struct vds_ds_spec *ds, int *n, const char *p, const char *end,
		     char *err, size_t len)
{
	const char *eq = memchr(p, '=', (size_t)(end - p));

	if (!eq)
		return vds_err(err, len, -EINVAL, "datastore '%.*s' is not NAME=PATH", (int)(end - p), p);
	if (!vds_ds_name_ok(p, (size_t)(eq - p)))
		return vds_err(err, len, -EINVAL, "datastore name '%.*s' must be 1-%d of [A-Za-z0-9_-]",
			    (int)(eq - p), p, VDS_NAME_MAX);
	if (eq + 1 == end)
		return vds_err(err, len, -EINVAL, "datastore '%.*s' has an empty path", (int)(eq - p), p);
	if (vds_ds_find(ds, *n, p, (size_t)(eq - p)) >= 0)
		return vds_err(err, len, -EINVAL, "datastore name '%.*s' is given twice", (int)(eq - p), p);
	if (*n == VDS_MAX_DS)
		return vds_err(err, len, -EINVAL, "too many datastores (at most %d)", VDS_MAX_DS);
	ds[*n].path = strndup(eq + 1, (size_t)(end - eq - 1));
	if (!ds[*n].path) {
		return vds_err(err, len, -ENOMEM, "out of memory");
	}
	memcpy(ds[*n].name, p, (size_t)(eq - p));
	ds[*n].name[eq - p] = 0;
	(*n)++;
	return 0;
}

int vds_ds_parse(struct vds_ds_spec *ds, int *n, const char *arg, char *err, size_t len)
{
	const char *p = arg;

	if (!*arg)
		return vds_err(err, len, -EINVAL, "no datastores given (expected NAME=PATH[:NAME=PATH...])");
	while (*p) {
		const char *end = strchrnul(p, ':');
		int ret = parse_one(ds, n, p, end, err, len);

		if (ret)
			return ret;
		p = *end ? end + 1 : end;
	}
	return 0;
}

void vds_ds_free(struct vds_ds_spec *ds, int n)
{
	for (int i = 0; i < n; i++) {
		free(ds[i].path);
		ds[i].path = NULL;
	}
}
