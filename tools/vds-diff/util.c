/* util.c - argument parsing and error printing for vds-diff.
 * Errors are one line, prefixed with the program name, on stderr. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vds-diff.h"

void die_usage(const char *usage)
{
	fputs(usage, stderr);
	exit(2);
}

int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("vds-diff: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* The overlay library reuses a few errno values with a specific meaning. */
const char *ov_strerror(int neg_errno)
{
	switch (-neg_errno) {
	case EBADMSG: return "corrupt differencing file";
	case ENOTSUP: return "unsupported format version or feature";
	case ESTALE: return "differencing file belongs to another base";
	case EEXIST: return "file is not empty";
	default: return strerror(-neg_errno);
	}
}

int open_or_fail(const char *path, int flags, int *fd)
{
	*fd = open(path, flags | O_CLOEXEC, 0644);
	if (*fd < 0)
		return fail("%s: %s", path, strerror(errno));
	return 0;
}
