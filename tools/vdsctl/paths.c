/* paths.c - see paths.h for the rule. Paths are folded component by component into
 * a buffer that holds a path without its leading '/' ("" is the top), so the mount
 * root, the current directory and the argument combine without any string being
 * parsed twice. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "errmsg.h"
#include "paths.h"

/* Append p's components to out[0..*pos). ".." at the top stays there when clamp
 * (an absolute path: "/.." is "/"), else it leaves the tree: -EXDEV. */
static int fold_into(char *out, size_t len, size_t *pos, const char *p, bool clamp)
{
	for (p += strspn(p, "/"); *p; p += strspn(p, "/")) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.') {
			char *slash = memrchr(out, '/', *pos);

			if (!*pos && !clamp)
				return -EXDEV;
			*pos = slash ? (size_t)(slash - out) : 0;
		} else if (n != 1 || p[0] != '.') {
			if (*pos + !!*pos + n >= len)
				return -ENAMETOOLONG;
			if (*pos)
				out[(*pos)++] = '/';
			memcpy(out + *pos, p, n);
			*pos += n;
		}
		p += n;
	}
	out[*pos] = 0;
	return 0;
}

int path_fold(const char *path, char *out, size_t len)
{
	size_t pos = 0;

	if (path[0] != '/')
		return -EINVAL;
	if (len < 2)
		return -ENAMETOOLONG;
	out[0] = '/';
	return fold_into(out + 1, len - 1, &pos, path, true);
}

/* What follows prefix in path, without the '/', if path is prefix or below it. */
static const char *below(const char *prefix, const char *path)
{
	size_t n = prefix ? strlen(prefix) : 0;

	if (!n || strncmp(path, prefix, n))
		return NULL;
	if (n == 1)		/* a mount at "/" */
		return path + 1;
	return path[n] == '/' ? path + n + 1 : path[n] ? NULL : path + n;
}

static int from_absolute(const struct mount_view *mv, const char *arg, char *out, size_t len,
			 char *err, size_t errlen)
{
	char abs[4096];
	const char *rest;
	size_t pos = 0;
	int ret = path_fold(arg, abs, sizeof(abs));

	if (ret)
		return vds_err(err, errlen, ret, "%s: path too long", arg);
	rest = below(mv->root, abs);
	if (!rest)
		rest = below(mv->typed, abs);
	if (!rest)
		return vds_err(err, errlen, -EXDEV, "%s is not inside the mount %s", arg, mv->root);
	return fold_into(out, len, &pos, rest, false);
}

static int from_relative(const struct mount_view *mv, const char *arg, char *out, size_t len,
			 char *err, size_t errlen)
{
	const char *base = "";
	size_t pos = 0;
	int ret;

	if (mv->root && !mv->cwd)
		return vds_err(err, errlen, -ENOENT, "%s: cannot tell the current directory (was it "
			    "removed?); give the path from the mount root or absolute", arg);
	if (mv->root && below(mv->root, mv->cwd))
		base = below(mv->root, mv->cwd);
	ret = fold_into(out, len, &pos, base, false);
	if (!ret)
		ret = fold_into(out, len, &pos, arg, false);
	if (ret == -EXDEV && mv->root)
		return vds_err(err, errlen, ret, "%s is not inside the mount %s", arg, mv->root);
	if (ret == -EXDEV)
		return vds_err(err, errlen, ret, "%s leads out of the mount", arg);
	return ret;
}

int mount_relpath(const struct mount_view *mv, const char *arg, char *out, size_t len,
		  char *err, size_t errlen)
{
	int ret;

	if (!*arg)
		return vds_err(err, errlen, -EINVAL, "an empty path names nothing");
	if (len < 1)
		return vds_err(err, errlen, -ENAMETOOLONG, "%s: path too long", arg);
	if (arg[0] == '/' && mv->root)
		ret = from_absolute(mv, arg, out, len, err, errlen);
	else
		ret = from_relative(mv, arg, out, len, err, errlen);	/* -s only: from the root */
	if (ret == -ENAMETOOLONG)
		return vds_err(err, errlen, ret, "%s: path too long", arg);
	if (!ret && !out[0])
		return vds_err(err, errlen, -EISDIR, "%s is the mount's root; name files or folders in it", arg);
	return ret;
}
