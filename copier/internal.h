/* internal.h -- declarations shared by the copier's source files only.
 *
 * Nothing here is API: fs/ and tools/ use copier.h and scheduler.h.
 */
#ifndef VDSFS_COPIER_INTERNAL_H
#define VDSFS_COPIER_INTERNAL_H

#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "copier.h"

#define COPIER_ALIGN 4096u  /* O_DIRECT offset/length/buffer alignment we use */

static inline uint64_t copier_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t align_down(uint64_t v, uint64_t a) { return v & ~(a - 1); }
static inline uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

/* limiter.c: reserve n bytes at time now; returns ns the caller must wait
 * before issuing more (0: go on). Debt is allowed, so several limiters can
 * be charged one after the other without an all-or-nothing dance. */
uint64_t limiter_reserve_at(struct copier_limiter *lim, uint64_t n, uint64_t now);

/* extent.c: next data extent at or after *off: [*start, *end). Returns 1
 * found, 0 no more data, -errno. Holes-unaware filesystems report one
 * extent covering the file. */
int extent_next(int fd, uint64_t off, uint64_t size, uint64_t *start, uint64_t *end);
/* Bytes of data (non-hole) in [0, size). */
int extent_data_bytes(int fd, uint64_t size, uint64_t *bytes);

/* ckpt.c: the resume checkpoint kept beside the partial destination. */
struct ckpt {
	uint64_t src_dev, src_ino, src_size;
	int64_t src_mtime_sec, src_mtime_nsec;
	uint64_t done_off;       /* everything below is durable at the destination */
};
int ckpt_name(const char *dst_rel, char *buf, size_t len);
int ckpt_write(int dirfd, const char *dst_rel, const struct ckpt *c);
int ckpt_read(int dirfd, const char *dst_rel, struct ckpt *c);
int ckpt_remove(int dirfd, const char *dst_rel);

/* hash.c: 64-bit hash of one block mixed with its offset. */
uint64_t block_hash(const void *buf, size_t len, uint64_t off);

/* msg.c: printf into a result message; returns err for tail calls. */
int copier_fail(struct copier_result *res, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* One side of a copy: our own buffered descriptor, and an O_DIRECT one
 * when the filesystem accepts it. direct says which one I/O uses now. */
struct side {
	int buf_fd;
	int dio_fd;     /* -1: no O_DIRECT here */
	bool direct;
};
static inline int side_fd(const struct side *s) { return s->direct ? s->dio_fd : s->buf_fd; }

/* engine.c: the io_uring data loop of one copy (copy.c does the rest). */
struct engine_job {
	struct side src, dst;
	uint64_t size;          /* logical size of the source */
	uint64_t start_off;     /* resume point (aligned) */
	uint64_t done_before;   /* data bytes below start_off */
	uint64_t data_total;    /* data bytes in the source */
	const struct copier_opts *o;
	struct copier_limiter *job_lim;
	struct copier_result *res;
	int dst_dirfd;          /* for checkpoints */
	const char *dst_rel;
	bool dst_opened;        /* we created/truncated it: ours to discard */
	struct ckpt ck;         /* source identity; done_off updated */
};
int engine_run(struct engine_job *ej);

/* copy.c: our own open file description of fd's file (via /proc/self/fd),
 * with O_NOATIME when allowed. */
int reopen_noatime(int fd, int flags);

/* verify.c: checksum with a descriptor we own (its offset moves). */
int checksum_own_fd(int fd, uint64_t *sum);

/* sched.c <-> sched_copy.c: the built-in copy run keeps its state in a
 * private pointer, apart from the caller's user pointer. */
struct sched;
struct sched_job;
struct sched_job_ops;
uint64_t sched_submit_impl(struct sched *s, uint32_t src_ds, uint32_t dst_ds,
			   const char *name, const struct sched_job_ops *ops,
			   void *user, void *impl);
void *sched_job_impl(const struct sched_job *job);
struct sched *sched_job_sched(const struct sched_job *job);
atomic_bool *sched_job_cancel_flag(struct sched_job *job);

#endif
