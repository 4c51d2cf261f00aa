/* log.c - see log.h. */
#include <stdio.h>

#include "log.h"

static vds_log_fn sink;

void vds_log_to(vds_log_fn fn)
{
	sink = fn;
}

void vds_log(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (sink)
		sink(prio, fmt, ap);
	else
		vfprintf(stderr, fmt, ap);
	va_end(ap);
}
