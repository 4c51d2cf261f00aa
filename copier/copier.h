/* copier.h -- public API of the vdsfs copy engine (no FUSE dependency).
 *
 * One call copies one regular file: copier_copy() reads the source through
 * io_uring with many reads and writes in flight from registered buffers,
 * skips holes (SEEK_DATA/SEEK_HOLE: holes are neither read nor written and
 * stay holes), uses O_DIRECT where both filesystems accept it, preserves
 * size, mode, owner and times, and ends durable (fsync of the file and of its
 * directory). It never writes to the source.
 *
 * The destination is always a *temporary* name chosen by the caller
 * (dst_dirfd + dst_rel); the caller renames it into place once the call
 * returned 0.  A successful return is the only "complete" signal: a partial
 * destination is either removed or kept together with its checkpoint file
 * "<dst_rel>.ckpt" so that a later call with opts.resume continues from the
 * last durable offset instead of starting over.
 *
 * Threads: copier_copy() is synchronous and uses only its own ring; call it
 * from as many threads as you like.  A struct copier_limiter may be shared
 * by any number of concurrent copies (that is how per-datastore limits
 * work); it has its own mutex.  Progress callbacks run on the copying thread
 * with no copier lock held.
 */
#ifndef VDSFS_COPIER_H
#define VDSFS_COPIER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COPIER_MSG_LEN 256
#define COPIER_MAX_LIMITERS 4

/* Token bucket in bytes per second; 0 means unlimited. Thread-safe. */
struct copier_limiter;
struct copier_limiter *copier_limiter_new(uint64_t bytes_per_sec);
void copier_limiter_set_rate(struct copier_limiter *lim, uint64_t bytes_per_sec);
uint64_t copier_limiter_rate(const struct copier_limiter *lim);
void copier_limiter_free(struct copier_limiter *lim);

#define COPIER_WARN_OWNER  0x1u  /* not root: owner could not be preserved */
#define COPIER_USED_DIRECT 0x2u  /* both sides used O_DIRECT for the data */

struct copier_progress {
	uint64_t done;          /* bytes of data copied so far (resumed bytes included) */
	uint64_t total;         /* bytes of data (non-hole) in the source */
	uint64_t checkpointed;  /* file offset below which the copy is durable */
	uint64_t resumed_from;  /* offset this run started from (0: fresh copy) */
	double rate;            /* bytes/s over this run so far */
	unsigned flags;         /* COPIER_USED_DIRECT while both sides use it */
};
typedef void (*copier_progress_fn)(void *arg, const struct copier_progress *p);

struct copier_opts {
	unsigned queue_depth;        /* I/Os in flight; 0 = 16, at most 1024 */
	size_t chunk_size;           /* bytes per I/O, rounded up to 4 KiB; 0 = 1 MiB, at most 64 MiB */
	uint64_t rate_limit;         /* this job only, bytes/s; 0 = none */
	/* shared limiters (e.g. source and destination datastore); NULL ends */
	struct copier_limiter *limiters[COPIER_MAX_LIMITERS];
	bool verify;                 /* re-read both files and compare checksums */
	bool resume;                 /* continue from "<dst_rel>.ckpt" if valid */
	bool keep_partial;           /* on failure keep partial + ckpt (else unlink) */
	bool no_direct;              /* never use O_DIRECT */
	bool no_space_check;         /* skip copier_check_space() */
	uint64_t space_margin;       /* extra free bytes required; 0 = 64 MiB */
	uint64_t checkpoint_every;   /* bytes between checkpoints; 0 = 256 MiB */
	unsigned progress_ms;        /* min interval between callbacks; 0 = 200 */
	copier_progress_fn progress;
	void *progress_arg;
	atomic_bool *cancel;         /* set to true to stop; may be NULL */
};

/* Result details; err is also the return value. */
struct copier_result {
	int err;                     /* 0 or negative errno */
	char msg[COPIER_MSG_LEN];    /* one line, set whenever err != 0 */
	uint64_t size;               /* logical size */
	uint64_t data_bytes;         /* bytes of data (non-hole) in the source */
	uint64_t copied;             /* bytes read+written by this run */
	uint64_t resumed_from;
	uint64_t checksum;           /* with verify: content checksum (both sides) */
	unsigned flags;              /* COPIER_WARN_*, COPIER_USED_* */
};

/* Copy src_fd (any open regular file; its offset and flags are not changed)
 * to dst_dirfd/dst_rel. Returns 0 or -errno; details in *res (may be NULL). */
int copier_copy(int src_fd, int dst_dirfd, const char *dst_rel,
		const struct copier_opts *opts, struct copier_result *res);

/* Same, opening the source as src_dirfd/src_rel read-only. */
int copier_copy_at(int src_dirfd, const char *src_rel, int dst_dirfd,
		   const char *dst_rel, const struct copier_opts *opts,
		   struct copier_result *res);

/* Free-space pre-check: the filesystem of dst_dirfd must have room for the
 * source's allocated bytes (minus what dst_rel already holds, for a resume)
 * plus margin. Returns 0, -ENOSPC with a message in msg, or another -errno. */
int copier_check_space(int src_fd, int dst_dirfd, const char *dst_rel,
		       uint64_t margin, char *msg, size_t msglen);

/* Could a copy of src_fd to dst_dirfd/dst_rel resume (opts.resume)? 0 with *off,
 * the offset it would resume from; -ENOENT if there is no checkpoint (it would start
 * over); -ESTALE if there is one it cannot trust (another source, a partial copy
 * missing or shorter than the checkpoint says). why gets one line on failure. */
int copier_resume_point(int src_fd, int dst_dirfd, const char *dst_rel, uint64_t *off,
			char *why, size_t len);

/* Checksum of a file's content that skips holes on both sides: files with
 * equal content (holes read as zeros) and size have equal checksums. */
int copier_checksum(int fd, uint64_t *sum);

/* Remove a partial destination and its checkpoint (missing ones are fine). */
int copier_discard(int dst_dirfd, const char *dst_rel);

#endif
