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

ssize_t iobuf_pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return done ? (ssize_t)done : -errno;
		if (n == 0)
			break;
		done += n;
	}
	return done;
}
