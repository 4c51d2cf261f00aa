/* msg.c -- the one-line error message every failed copy carries.
 *
 * The engine reports errors as -errno plus text the caller can show as is;
 * the text says which step failed and includes strerror().
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

int copier_fail(struct copier_result *res, int err, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (!res || res->err)  /* keep the first, root-cause message */
		return err;
	res->err = err;
	va_start(ap, fmt);
	vsnprintf(res->msg, sizeof(res->msg), fmt, ap);
	va_end(ap);
	n = strlen(res->msg);
	if (n < sizeof(res->msg))
		snprintf(res->msg + n, sizeof(res->msg) - n, ": %s", strerror(-err));
	return err;
}
