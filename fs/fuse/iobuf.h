/* iobuf.h - per-worker aligned buffers for the I/O path.
 *
 * Each FUSE worker thread owns one buffer of VDS_IO_MAX bytes, aligned for O_DIRECT,
 * allocated on first use and freed when the worker exits: reads land there before
 * the reply, and misaligned write payloads are bounced through it. No malloc, no
 * lock on the hot path.
 */
#ifndef VDS_IOBUF_H
#define VDS_IOBUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VDS_IO_MAX	(1u << 20)	/* = max_write = max_read, 256 pages */
#define VDS_IO_ALIGN	4096u

void *iobuf_get(void);
void iobuf_put_thread(void);

static inline int iobuf_aligned(const void *p, uint64_t off, size_t len)
{
	return !(((uintptr_t)p | off | len) & (VDS_IO_ALIGN - 1));
}

#endif
