/* uring_abi.h - the kernel's FUSE-over-io_uring interface (FUSE protocol 7.42).
 *
 * Debian 12's <linux/fuse.h> is protocol 7.38 and libfuse 3.14 predates the ring,
 * so the few definitions the ring needs are written out here, as the kernel's uapi
 * header documents them (Documentation/filesystems/fuse-io-uring.rst): the INIT
 * flag, the two commands, the per-entry header the kernel fills, and the command
 * block of a 128-byte SQE. Nothing here is used unless the kernel offers the ring
 * in its INIT request.
 */
#ifndef VDS_URING_ABI_H
#define VDS_URING_ABI_H

#include <linux/fuse.h>
#include <stdint.h>

/* INIT flags2 bit 9: the kernel offers requests through io_uring (in the request),
 * the server will take them so (in the reply). */
#define VDS_FUSE_OVER_IO_URING	(1ull << 41)

enum {
	VDS_FUSE_URING_CMD_REGISTER = 1,		/* give the kernel an entry's buffers */
	VDS_FUSE_URING_CMD_COMMIT_AND_FETCH = 2,	/* reply, and wait for the next request */
};

/* The kernel's bookkeeping of one entry's current request. */
struct vds_fuse_uring_ent_in_out {
	uint64_t flags;
	uint64_t commit_id;	/* the request's unique: name it when committing */
	uint32_t payload_sz;	/* bytes of payload: the request's, then the reply's */
	uint32_t padding;
	uint64_t reserved;
};

/* An entry's header buffer (iov[0] of REGISTER); the payload buffer is iov[1]. */
struct vds_fuse_uring_req_header {
	char in_out[128];	/* struct fuse_in_header, then struct fuse_out_header */
	char op_in[128];	/* the request's first argument (fuse_read_in, ...) */
	struct vds_fuse_uring_ent_in_out ring_ent_in_out;
};

/* The command block at sqe->cmd of an IORING_OP_URING_CMD SQE on /dev/fuse. */
struct vds_fuse_uring_cmd_req {
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;		/* the queue: one per possible CPU */
	uint8_t padding[6];
};

#endif
