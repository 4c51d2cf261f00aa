/* mig.h - live migration of one file to another datastore.
 *
 * The flow per file (docs in MIGRATION.md):
 *   queued     waiting in the scheduler for its two datastores to be free
 *   copying    overlay on: writes go to a differencing file on the SOURCE datastore,
 *              the frozen base is copied into the destination's .vdsfs/
 *   converging mirror on: every write goes to the differencing file and, under the
 *              block's region lock, to the copy as well; one pass merges what the
 *              differencing file held before. Nothing new can become dirty, so this
 *              converges however fast the writer is.
 *   switching  I/O to this file paused: copy made durable, journal says "switching",
 *              copy renamed into place and source unlinked (one flip under the
 *              namespace lock), node and handles pointed at the destination, resume.
 *   done | failed | cancelled
 * Cancel at any phase mirrors into the base instead and drops the overlay.
 *
 * Why the differencing file lives on the source datastore: until the flip every
 * acknowledged write then lives on the source datastore (base + differencing file),
 * so a destination that fills up, fails or vanishes can never take data with it; the
 * journal sits next to them for the same reason.
 *
 * Locking: v->mig_lock guards the registry and every field marked (L). I/O state
 * fields (M) are written under the file's vfile gate held exclusive and read under
 * it shared. The region locks order writers against the converge pass.
 */
#ifndef VDS_MIG_H
#define VDS_MIG_H

#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

struct vds;
struct vfile;
struct node;
struct overlay;
struct sched_job;

enum mig_phase {
	MIG_QUEUED,
	MIG_COPYING,
	MIG_CONVERGING,
	MIG_SWITCHING,
	MIG_CANCELLING,
	MIG_DONE,
	MIG_FAILED,
	MIG_CANCELLED,
};

#define MIG_REGION_SHIFT	20	/* 1 MiB regions for write/merge ordering */
#define MIG_REGIONS		64

/* What a migrate request asks besides its files (control_req.c, mig_space.c). */
struct mig_opts {
	uint64_t bwlimit;		/* bytes/s for each copy, 0 = none */
	uint64_t space_margin;		/* free bytes the destination must keep besides */
	bool space_check;		/* false: no check, neither at submit nor while running */
	unsigned parallel;		/* migrations run at once from now on; 0 = as is */
};
#define MIG_SPACE_MARGIN	(64ull << 20)	/* default space_margin */

struct mig {
	uint64_t id;
	struct vds *v;
	struct vfile *vf;		/* ref held while active */
	struct node *node;
	int src, dst;			/* datastore indexes */
	dev_t src_dev;			/* the migrating inode on the source, as bound */
	ino_t src_ino;
	uint64_t bwlimit;		/* bytes/s for this copy, 0 = none */
	bool space_check;		/* mig_opts: check room while it runs */
	uint64_t space_need;		/* (L) allocated + growth, estimated at submit */
	char path[4096];		/* (L) current relative path */
	char name[32];			/* "mig-<id>": .diff/.json on src, .copy on dst */
	const char *journal_phase;	/* (L) what the journal says now, NULL = none */
	unsigned path_gen;		/* (L) bumped by every rename of path */
	const char *held_at;		/* (L) test hold point it waits at, or NULL */

	/* (M) I/O routing */
	struct overlay *ov;
	int base_fd, diff_fd, copy_fd;
	int mirror_fd;			/* -1, or the file writes are mirrored to */
	pthread_mutex_t region[MIG_REGIONS];
	atomic_llong mtime_ns;		/* last write through the overlay, 0 = none */
	/* The overlay reads the base through an O_NOATIME fd, so the file's atime is
	 * kept here while it migrates, by the rule of the source's mount (strictatime,
	 * relatime or noatime), and given to the destination at the switch. */
	atomic_llong atime_ns;
	long long base_mtime_ns;	/* the base's mtime and ctime at overlay-on */
	long long base_ctime_ns;
	unsigned long atime_rule;	/* ST_NOATIME, ST_RELATIME or 0 (statvfs f_flag) */

	/* (L) progress and outcome */
	enum mig_phase phase;
	uint64_t done, total;
	double rate;
	uint64_t queued_ns, started_ns, ended_ns;	/* CLOCK_REALTIME */
	uint64_t started_seq, ended_seq;		/* scheduler event order */
	uint64_t copy_ns, converge_ns, pause_ns;
	uint64_t flush_ns;		/* switching, before the pause: copy and folders synced */
	uint64_t cleanup_ns;		/* after the pause: source, differencing file removed */
	uint64_t merged_bytes;
	int err;
	char msg[256];
	bool recovered;			/* outcome of a crash recovery at mount */
	bool stuck;			/* (L) rollback, or a switch past its commit,
					 * failed: the overlay stays until exit */
	bool stale;			/* (L) switched, but the source is still there */
	_Atomic int mirror_err;		/* first failed mirror write */

	atomic_bool cancel;		/* user cancel or unlink: roll back */
	atomic_bool stopping;		/* daemon shutdown: leave it to recovery */
	uint64_t job;			/* scheduler job id */
	struct sched_job *sjob;		/* set when the scheduler starts it */
	pthread_t thread;
	bool thread_started;

	/* (L) the scheduler's events, kept here rather than as pointers to this
	 * record in a log that outlives it; seq 0 = not (yet) seen */
	char *queued_path;		/* path when queued, as the events show it */
	uint64_t queued_seq, queued_ts, started_ts, ended_ts;	/* CLOCK_MONOTONIC */
	int end_event;			/* enum sched_event_type of the last event */

	/* (L) registry and lifetime: a record is freed only once it is dropped from
	 * the listing, the scheduler has released its job (no event will name it
	 * again) and its thread has exited */
	struct mig *next, *prev;	/* every record, oldest first */
	struct mig *done_next;		/* finished and listed, in finishing order */
	bool dropped;			/* no longer listed: status and cancel skip it */
	bool released;			/* by the scheduler, or never queued (recovered) */
	bool thread_exited;
};

/* Finished migrations listed by status and events: the most recent this many (by
 * the time they finished). Active and stuck ones are always listed. */
#define MIG_KEEP_FINISHED	1000
#define MIG_STR_(x)		#x
#define MIG_STR(x)		MIG_STR_(x)
#define MIG_DROPPED_HINT	" (only the " MIG_STR(MIG_KEEP_FINISHED) " most recently finished are kept)"

/* daemon lifetime */
int mig_init(struct vds *v);
void mig_shutdown(struct vds *v);
int mig_recover(struct vds *v);

/* control requests; err gets one line on failure */
/* Queue the migration of paths[i] to datastore dsts[i] for every i < n, all or none:
 * every file is checked (mig_check) and pinned before the first is queued. 0 and
 * ids[i] set, or -errno with one line in err and nothing queued. */
int mig_submit(struct vds *v, const char *const *paths, const int *dsts, size_t n,
	       const struct mig_opts *o, uint64_t *ids, char *err, size_t len);
/* Could path move to datastore dst now? 0, or -errno with one line in err (a lack
 * of room names every term of the estimate, mig_space.c). */
int mig_check(struct vds *v, const char *path, int dst, const struct mig_opts *o, char *err,
	      size_t len);
int mig_cancel(struct vds *v, uint64_t id, char *err, size_t len);
/* Records as JSON, oldest first (id 0: every listed one); *dropped gets how many
 * finished records were dropped from the listing so far. */
json_object *mig_status(struct vds *v, uint64_t id, uint64_t *dropped);
/* The scheduler events of the listed records, in sequence order. */
json_object *mig_events(struct vds *v, uint64_t *dropped);
uint64_t mig_of_path(struct vds *v, const char *path);
int mig_active_on(struct vds *v, int ds);

/* namespace hooks (hold v->ns_lock shared when calling) */
void mig_path_moved(struct vds *v, const char *from, const char *to);
void mig_path_unlinked(struct vds *v, const char *path);
void mig_path_exchanged(struct vds *v, const char *a, const char *b);

/* I/O path, called with the vfile gate held shared and vf->mig == m */
ssize_t mig_read(struct mig *m, void *buf, size_t len, off_t off);
ssize_t mig_write(struct mig *m, const void *buf, size_t len, off_t off);
int mig_fsync(struct mig *m, int datasync);
int mig_fallocate(struct mig *m, int mode, off_t off, off_t len);
off_t mig_lseek(struct mig *m, off_t off, int whence);
int mig_truncate(struct mig *m, off_t size);
void mig_fix_stat(struct mig *m, struct stat *st);

const char *mig_phase_name(enum mig_phase p);
void mig_release_stuck(struct mig *m);
/* Remove the differencing file, the copy and its checkpoint, then the journal
 * (unless keep_journal, or a step before failed: recovery then retries). 0 or the
 * first error, logged with the step that failed. */
int mig_drop_files(struct mig *m, bool keep_journal);
/* Lookups skip a stale source (mig_switch.c, step 10): st as found on datastore ds. */
bool mig_hides(struct vds *v, int ds, const struct stat *st);
int mig_zero_range(int fd, off_t off, off_t len);
struct mig *mig_new(struct vds *v, const char *path, int src, int dst, uint64_t bwlimit);
/* Registry, with v->mig_lock held: add a new record; note that m reached its final
 * phase (it may drop the oldest finished record from the listing). */
void mig_register_locked(struct vds *v, struct mig *m);
void mig_finished_locked(struct vds *v, struct mig *m);

#endif
