/* mig_int.h - what the files of mig/ share; nothing outside mig/ includes it.
 *
 * Locking (the order is fs/lock/lock.h's):
 *   (L) fields: g->lock (LK_MIGS), the registry's lock. Never held across I/O.
 *   (J) fields: m->jlock (LK_JOURNAL), held across a journal write and its fsync.
 *   (M) fields: the I/O state, written only while the file's gate is held exclusive
 *       (vfile_pause) and read under it shared (every route callback).
 *   m->region[]: the 1 MiB region locks (LK_REGION), writers against merge passes.
 * Fields without a mark are set before the migration is queued and then constant,
 * or belong to its thread alone.
 */
#ifndef VDS_MIG_INT_H
#define VDS_MIG_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "lock.h"
#include "mig.h"
#include "ns.h"
#include "store.h"
#include "vfile.h"

struct overlay;
struct sched;
struct sched_job;

#define MIG_REGION_SHIFT	20	/* 1 MiB regions for write/merge ordering */
#define MIG_REGIONS		64
#define MIG_NO_PHASE		(-1)	/* journal_phase: no journal written yet */

struct mig {
	uint64_t id;
	struct migs *g;
	struct vfile *vf;		/* a reference while active */
	struct node *node;		/* pinned while active */
	int src, dst;			/* datastore indexes */
	dev_t src_dev;			/* the migrating inode on the source, as bound */
	ino_t src_ino;
	uint64_t bwlimit;		/* bytes/s for this copy, 0 = none */
	bool space_check;		/* mig_opts: check room while it runs */
	uint64_t space_need;		/* (L) allocated + growth, estimated at submit */
	char name[32];			/* "mig-<id>": .diff/.json on src, .copy on dst */
	char path[4096];		/* (L) current relative path */
	unsigned path_gen;		/* (L) bumped by every change of path */
	const char *held_at;		/* (L) test hold point it waits at, or NULL */

	/* (J) the journal */
	pthread_mutex_t jlock;
	int journal_phase;		/* what the journal says now, MIG_NO_PHASE = none */
	unsigned journal_gen;		/* path_gen of the path it names */
	bool drop_pending;		/* (L) the file of a stuck migration was removed */

	/* (M) I/O routing */
	struct overlay *ov;
	int base_fd, diff_fd, copy_fd;
	int mirror_fd;			/* -1, or the file writes are mirrored to */
	pthread_rwlock_t span;		/* LK_REGION: shared with regions, exclusive for a
					 * resize or discard (mig_io.c) */
	pthread_mutex_t region[MIG_REGIONS];
	atomic_llong mtime_ns;		/* last write through the overlay, 0 = none */
	/* The overlay reads the base through an O_NOATIME fd, so the file's atime is
	 * kept here while it migrates, by the rule of the source's mount (strictatime,
	 * relatime or noatime), and given to the destination at the switch. */
	atomic_llong atime_ns;
	long long base_mtime_ns;	/* the base's mtime and ctime at overlay-on */
	long long base_ctime_ns;
	unsigned long atime_rule;	/* ST_NOATIME, ST_RELATIME or 0 (statvfs f_flag) */
	_Atomic int mirror_err;		/* first failed mirror write */

	/* (L) progress and outcome */
	enum mig_phase phase;
	uint64_t done, total;
	double rate;
	uint64_t queued_ns, started_ns, ended_ns;	/* CLOCK_REALTIME */
	uint64_t copy_ns, converge_ns, pause_ns;
	uint64_t flush_ns;		/* switching, before the pause: copy and folders synced */
	uint64_t cleanup_ns;		/* after the pause: source, differencing file removed */
	uint64_t merged_bytes;
	int err;
	char msg[256];
	bool recovered;			/* outcome of a crash recovery at mount */
	/* Resumed at mount (recover.c) instead of rolled back: the phase it was in
	 * (copying or converging), the offset the copy went on from, and the bytes
	 * the resumed copy wrote again. */
	bool resumed;
	enum mig_phase resume_phase;
	uint64_t resumed_from, recopied;
	bool stuck;			/* rollback, or a switch past its commit, failed:
					 * the overlay stays until exit */
	bool stale;			/* switched, but the source is still there (hidden) */

	atomic_bool cancel;		/* user cancel or unlink: roll back */
	atomic_bool stopping;		/* daemon shutdown: leave it to recovery */
	uint64_t job;			/* scheduler job id */
	struct sched_job *sjob;		/* set when the scheduler starts it */
	pthread_t thread;
	bool thread_started;

	/* (L) the scheduler's events, kept here rather than as pointers to this
	 * record in a log that outlives it; seq 0 = not (yet) seen */
	char *queued_path;		/* path when queued, as the events show it */
	uint64_t queued_seq, started_seq, ended_seq;
	uint64_t queued_ts, started_ts, ended_ts;	/* CLOCK_MONOTONIC */
	int end_event;			/* enum sched_event_type of the last event */

	/* (L) registry and lifetime: a record is freed only once it is dropped from
	 * the listing, the scheduler has released its job (no event names it again),
	 * its thread has exited, and no caller holds a reference (refs) */
	struct mig *next, *prev;	/* every record, oldest first */
	struct mig *done_next;		/* finished and listed, in finishing order */
	unsigned refs;
	bool dropped;			/* no longer listed: status and cancel skip it */
	bool released;			/* by the scheduler, or never queued (recovered) */
	bool thread_exited;
};

/* The registry of one mount. */
struct migs {
	struct store *store;
	struct ns *ns;
	pthread_mutex_t lock;		/* LK_MIGS: everything below, and (L) of each */
	struct mig *head, *tail;	/* every record, oldest first */
	struct mig *done_head, *done_tail;	/* finished and listed */
	size_t ndone;
	uint64_t dropped;		/* finished records no longer listed */
	uint64_t next_id;
	struct sched *sched;
	pthread_cond_t retry;		/* with lock: wakes a switch's retry wait early */
	bool journals_dirty;		/* a path changed; mig_sync_journals has work */
	bool resume;			/* -o resume (default on): recovery resumes */
	struct mig **pending;		/* resumed at mount, queued by migs_start */
	size_t npending, pending_cap;
};

static inline void migs_lock(struct migs *g)
{
	lk_lock(&g->lock, LK_MIGS);
}

static inline void migs_unlock(struct migs *g)
{
	lk_unlock(&g->lock, LK_MIGS);
}

/* mig.c: the migration's thread and its helpers */
/* Give m's file its route (and the mirror when converging), in one pause. */
void mig_route_on(struct mig *m, struct overlay *ov, int mirror_fd);
/* Byte offset between checkpoints of a migration's copy: what a crash can cost. */
#define MIG_CHECKPOINT_EVERY	(64ull << 20)
void mig_set_phase(struct mig *m, enum mig_phase p);
/* m->path as it is now (g->lock taken here). */
void mig_copy_path(struct mig *m, char *out, size_t len);
/* Write the journal record for phase, durably (takes m->jlock). */
int mig_journal(struct mig *m, enum mig_phase phase);
/* Record the first failure of m: m->err = err and m->msg the formatted line (later
 * ones are dropped: the first is the cause). Returns err. */
int mig_fail(struct mig *m, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Remove the differencing file, the copy and its checkpoint, then the journal
 * (unless keep_journal, or a step before failed: recovery then retries). 0 or the
 * first error, logged with the step that failed. */
int mig_drop_files(struct mig *m, bool keep_journal);
void mig_thread_start(struct mig *m);
/* Wait *wait_s seconds (or until the daemon stops: false) and double it, up to 60:
 * the pace of a retry. */
bool mig_wait_retry(struct mig *m, unsigned *wait_s);
/* Shutdown, no I/O any more: a stuck migration finally lets go of its file. */
void mig_release_stuck(struct mig *m);

/* mig_io.c: the route a migrating file's I/O takes (vfile.h) */
extern const struct vroute mig_route;
int mig_zero_range(int fd, off_t off, off_t len);

/* mig_switch.c: 0 once the file lives on the destination, *settled telling whether
 * the switch is durable and the source gone (else the journal must stay for the next
 * mount); else -errno (-ECANCELED: cancelled) with the source still authoritative,
 * or, with m->stuck set, the journal committed and the overlay mirroring into the
 * copy until the next mount finishes the switch. */
int mig_switch(struct mig *m, bool *settled);

/* registry.c */
struct mig *mig_new(struct migs *g, const char *path, int src, int dst, uint64_t bwlimit);
/* Pin m's file (m->path on m->src) and take a reference on its vfile for the
 * migration's lifetime; the file must be the inode in *expect. */
int mig_bind(struct mig *m, const struct stat *expect);
/* Recovery, before the scheduler runs: m resumes once migs_start queues it. */
int mig_resume_later(struct migs *g, struct mig *m);
void mig_free(struct mig *m);
/* With g->lock held: add a new record; note that m reached its final phase (it may
 * drop the oldest finished record from the listing). */
void mig_register_locked(struct migs *g, struct mig *m);
void mig_finished_locked(struct migs *g, struct mig *m);
/* With g->lock held: m's source could not be removed after the switch (stale,
 * hidden from lookups), or now has been. */
void mig_set_stale_locked(struct mig *m, bool stale);

/* mig_space.c: what a destination needs (the rule is at the top of that file). */
struct mig_space {
	uint64_t allocated, diff, rate;	/* summed over the files */
	uint64_t growth, pending, margin, need;	/* set by mig_space_verdict */
	unsigned files, npending;
	double secs;
};
/* Count one more file (its stat, as found on its datastore). */
void mig_space_add(struct migs *g, struct mig_space *sp, const struct stat *st);
/* 0 if datastore dst has room for sp (or o says not to check), else -ENOSPC with
 * every term in err; what names the files ("vm/disk", "the 5 files of ..."). */
int mig_space_verdict(struct migs *g, int dst, struct mig_space *sp, const struct mig_opts *o,
		      const char *what, char *err, size_t len);
/* While m runs: 0 if its destination still has room for still bytes, else the
 * migration has failed with -ENOSPC and a line naming the datastore. */
int mig_space_left(struct mig *m, uint64_t still);
/* Bytes the differencing file holds (allocated), 0 if none. */
uint64_t mig_space_diff(struct mig *m);

#endif
