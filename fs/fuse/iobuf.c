/* iobuf.c - see iobuf.h. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "iobuf.h"

static __thread void *tl_buf;

void *iobuf_get(void)
{
	if (!tl_buf && posix_memalign(&tl_buf, VDS_IO_ALIGN, VDS_IO_MAX))
		tl_buf = NULL;
	return tl_buf;
}

void iobuf_put_thread(void)
{
	free(tl_buf);
	tl_buf = NULL;
}
