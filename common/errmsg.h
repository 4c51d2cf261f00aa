/* errmsg.h - how the parsers in common/ and their callers report: a negative errno
 * returned, one line of text in a buffer the caller owns and prints at its edge. */
#ifndef VDS_ERRMSG_H
#define VDS_ERRMSG_H

#include <stddef.h>

/* Format one line into err (len bytes, truncated if need be) and return ret, so that
 * a refusal is one statement: return vds_err(err, len, -EINVAL, "...", ...). */
int vds_err(char *err, size_t len, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
