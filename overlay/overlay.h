/* overlay.h - the differencing file ("overlay") of one disk image.
 *
 * While a disk's base image is copied elsewhere the base must not change.  An
 * overlay sends every write to a differencing file and serves each read from the
 * differencing file where it holds the block, else from the untouched base.  Later
 * the differencing file is merged into the copy (or back into the base to cancel).
 * The on-disk format is described in overlay/FORMAT.md.
 *
 * The library works on file descriptors the caller opened (the base and the
 * differencing file); it never opens, closes, prints or exits.  Errors are negative
 * errno values:
 *   -EBADMSG   the differencing file is corrupt (bad checksum, torn header, ...)
 *   -ENOTSUP   unknown format version or feature flag
 *   -ESTALE    the differencing file belongs to another base (identity mismatch)
 *   -EBUSY     a merge session is already running
 *   -EINVAL    bad argument
 *   anything else comes from the kernel (EIO, ENOSPC, ...).
 *
 * Threads: read, write, discard, flush, stats, next_extent, the log iterator and
 * merge_pass may be called from any number of threads at once.  resize,
 * merge_begin and merge_end briefly exclude all other I/O.  create/open/close are not concurrent with anything.
 *
 * O_DIRECT: if the caller opened either fd with O_DIRECT the library keeps its own
 * I/O on that fd 4 KiB aligned (bouncing unaligned caller buffers).  Not required.
 *
 * Costs worth knowing: overlay_read takes no lock; overlay_write to a block already
 * in the differencing file is one pwrite in place, to any other block one pwrite
 * at the end of the file's log (format version 2); flush is one fdatasync when no
 * block changed state since the last flush, else two (data and map records, then
 * header).  resize, and a write past the end (which resizes), commit at once.
 * Memory follows what was written, not the virtual size: about 6 bytes per
 * written block plus 96 bytes per 16-block region touched (overlay_stats
 * mem_bytes).
 *
 * Live migration: overlay_merge_begin(ov, dest_fd), then overlay_merge_pass() until
 * *remaining is small, pause guest I/O, one more pass (remaining is then 0),
 * fdatasync is done by the pass, switch, overlay_merge_end(), overlay_close().  Cancel
 * is the same with the base (opened O_RDWR) as target.  End a merge session before
 * closing the overlay.
 */
#ifndef VDS_OVERLAY_H
#define VDS_OVERLAY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define OVERLAY_DEFAULT_BLOCK_SIZE (4u << 10)	/* chosen by measurement, FORMAT.md */
#define OVERLAY_MIN_BLOCK_SIZE (4u << 10)
#define OVERLAY_MAX_BLOCK_SIZE (1u << 20)
#define OVERLAY_UUID_MAX 63	/* bytes of the caller's base identity string */

struct overlay;
struct overlay_merge;

enum overlay_state {
	OVERLAY_BASE = 0,	/* read the base */
	OVERLAY_DATA = 1,	/* the block lives in the differencing file */
	OVERLAY_ZERO = 2,	/* discarded or zeroed */
};

struct overlay_create_opts {
	uint32_t block_size;	/* 0: OVERLAY_DEFAULT_BLOCK_SIZE */
	int64_t size;		/* logical size; < 0: the base's size */
	const char *base_uuid;	/* caller's identity for the base, NULL = "" */
};

/* Open flags. */
#define OVERLAY_OPEN_RDONLY	 (1u << 0) /* never write the diff (no repair) */
#define OVERLAY_OPEN_NO_IDENTITY (1u << 1) /* skip the base identity check */

struct overlay_open_opts {
	const char *base_uuid;	/* must match the one given at create (NULL = "") */
	unsigned flags;
	char *why;		/* optional: one-line reason when open fails */
	size_t why_len;
};

/* Create a new differencing file over base_fd in the empty file diff_fd.  Durable
 * when it returns. */
int overlay_create(int base_fd, int diff_fd, const struct overlay_create_opts *o,
		   struct overlay **out);

/* Open and validate an existing differencing file.  base_fd may be -1 together with
 * OVERLAY_OPEN_RDONLY to inspect a file without its base (reads of base blocks then
 * fail with -EBADF). */
int overlay_open(int base_fd, int diff_fd, const struct overlay_open_opts *o,
		 struct overlay **out);

/* Free the handle.  Does not flush and does not close the fds. */
void overlay_close(struct overlay *ov);

/* pread/pwrite-like; return bytes done or -errno.  Reads stop at the logical size.
 * A write past the logical size grows the overlay first (durably, like resize). */
ssize_t overlay_read(struct overlay *ov, void *buf, size_t len, uint64_t off);
ssize_t overlay_write(struct overlay *ov, const void *buf, size_t len, uint64_t off);

/* Make [off, off+len) read as zeros.  Whole blocks become OVERLAY_ZERO (and their
 * space is released); partial blocks are written with zeros. */
int overlay_discard(struct overlay *ov, uint64_t off, uint64_t len);

/* Grow or shrink the logical size.  Durable when it returns.  Bytes past the old size
 * read as zeros after a later grow, never as old base or diff contents. */
int overlay_resize(struct overlay *ov, uint64_t new_size);

/* Once flush returns, every write/discard that completed before it was called
 * survives a crash of the process or the machine. */
int overlay_flush(struct overlay *ov);

struct overlay_stats {
	uint64_t size;		/* logical size in bytes */
	uint64_t base_size;	/* size of the base at create */
	uint32_t block_size;
	uint64_t nblocks;
	uint64_t data_blocks;	/* blocks held in the differencing file */
	uint64_t zero_blocks;
	uint64_t data_bytes;	/* data_blocks * block_size */
	uint64_t gen;		/* last committed generation */
	unsigned flags;		/* header flags (FORMAT.md) */
	char base_uuid[OVERLAY_UUID_MAX + 1];
	/* Added with format version 2. */
	unsigned version;	/* format version of the committed header (1 or 2) */
	uint64_t mem_bytes;	/* heap bytes this overlay holds (map, log bookkeeping) */
	uint64_t log_blocks;	/* slots in the differencing file's log */
	uint64_t free_blocks;	/* of which free for reuse (FORMAT.md "Space") */
};
void overlay_stats(struct overlay *ov, struct overlay_stats *st);
/* The block size, fixed for the overlay's life; unlike overlay_stats, takes no lock
 * (for a caller on the I/O path that needs block boundaries). */
uint32_t overlay_block_size(const struct overlay *ov);

/* Iterate changed (DATA or ZERO) extents in offset order.  Start with *cursor = 0;
 * returns 1 and fills *ext, or 0 at the end.  Extents are clamped to the size. */
struct overlay_extent {
	uint64_t off, len;
	enum overlay_state state;
};
int overlay_next_extent(struct overlay *ov, uint64_t *cursor, struct overlay_extent *ext);

/* The same changed extents in the order their bytes lie in the differencing file,
 * for a merge that wants to read it front to back: first every DATA extent in log
 * order (a run of blocks consecutive in both the guest and the log is one extent),
 * then every ZERO extent in offset order.  Extents are clamped to the size.
 *
 *   struct overlay_log_iter *it;  overlay_log_iter_begin(ov, &it);
 *   while (overlay_log_iter_next(it, &e) == 1) { overlay_read(ov, buf, ..., e.off) ... }
 *   overlay_log_iter_end(it);
 *
 * next returns 1 with *ext filled, 0 at the end, or -errno.  Concurrent writes are
 * allowed: an extent reflects the map when its part of the log was scanned, so a
 * block changed after that may be reported with its old state or missed; read its
 * bytes through overlay_read, as with next_extent, and mirror later writes (the
 * daemon's converge does both).  Every block that was DATA or ZERO when begin
 * returned and stays so is reported exactly once; a block first written after
 * begin is reported only if it took a free slot below the log's end at begin
 * (appended slots are not scanned), so an iteration ends however fast the writer
 * is.  The iterator scans the map in
 * windows of the log: memory 16 bytes per slot of a window, a 16th of the log (at
 * least 64 Ki slots), at most 17 scans of the map in all.  End it before closing
 * the overlay. */
struct overlay_log_iter;
int overlay_log_iter_begin(struct overlay *ov, struct overlay_log_iter **out);
int overlay_log_iter_next(struct overlay_log_iter *it, struct overlay_extent *ext);
void overlay_log_iter_end(struct overlay_log_iter *it);

/* Converging merge.  begin() marks every changed block dirty for this target; each
 * pass() copies the blocks dirtied since the previous pass (DATA blocks copied, ZERO
 * blocks zeroed, the target truncated to the logical size, then fdatasync(target)) and
 * stores in *remaining how many blocks were dirtied again meanwhile.  Writes that
 * race with a pass are never lost: such a block stays dirty for the next pass.
 * Returns blocks merged or -errno.  target_fd may be the base itself (cancel): the
 * header then records that the base was modified (FORMAT.md, flag BASE_DIRTY).
 * One merge session at a time. */
int overlay_merge_begin(struct overlay *ov, int target_fd, struct overlay_merge **out);
int64_t overlay_merge_pass(struct overlay_merge *m, uint64_t *remaining);
void overlay_merge_end(struct overlay_merge *m);

/* One-shot merge for a quiescent overlay: begin, pass until nothing is left, end.
 * -EAGAIN if writers kept dirtying blocks for 100 passes. */
int overlay_merge(struct overlay *ov, int target_fd);

/* Offline verification of a differencing file: every checksum, every referenced
 * structure, geometry and counts.  report() gets one line per finding.  Returns the
 * number of problems found (0 = clean) or -errno if the file could not be read. */
typedef void (*overlay_report_fn)(void *arg, const char *msg);
int overlay_check(int diff_fd, overlay_report_fn report, void *arg);

/* Human name of a state ("base", "data", "zero"). */
const char *overlay_state_name(enum overlay_state s);

#endif
