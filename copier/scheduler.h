/* scheduler.h -- the copy scheduler: the distinct-datastore rule (vSphere 5.1).
 *
 * A job names a source and a destination datastore (small integer ids the
 * caller assigns) and has a run callback. The scheduler runs at most
 * max_running jobs at once, and never lets more than the per-datastore limit
 * (default 1) of running jobs use one datastore, whether as source or as
 * destination. The queue is FIFO but work-conserving: each time anything
 * changes, the queue is scanned from its head and every job whose datastores
 * are free starts, so a later job may overtake one that waits.
 *
 * A job holds its slot from "started" until sched_job_done() is called, not
 * until run returns: the daemon keeps a datastore pair busy for a whole live
 * migration (copy, converge, switch) by calling sched_job_done() later.
 * sched_submit_copy() is the ready-made run that copies one file on a
 * thread of its own with copier_copy().
 *
 * Events (queued, started, progress, finished, failed, cancelled) carry a
 * sequence number and a CLOCK_MONOTONIC timestamp, are appended to an
 * in-memory log (if enabled) and are delivered to the event callback in
 * sequence order from the scheduler's own thread.
 *
 * A daemon-driven job, sketched (live migration holds its pair until the
 * switch is done, long after the copy itself ended):
 *
 *	static void mig_run(struct sched_job *job)      // scheduler thread
 *	{
 *		struct mig *m = sched_job_user(job);
 *		m->job = job;
 *		start_migration_thread(m);              // returns at once
 *	}
 *	... on the migration thread: copier_copy(m->src_fd, m->dst_dirfd,
 *	    ".vdsfs/tmp", &opts, &res) with opts.limiters = the datastores'
 *	    sched_ds_limiter(), then converge, switch, and finally
 *	    sched_job_done(m->job, status, res.msg);  // frees the pair
 *	static const struct sched_job_ops mig_ops = { .run = mig_run,
 *		.cancel = mig_cancel, .precheck = mig_space_check };
 *	sched_submit(s, src_ds, dst_ds, "vm1/disk0", &mig_ops, m);
 *
 * Locking: one mutex inside struct sched guards everything. No callback
 * (run, cancel, precheck, event) is ever called with it held, so callbacks
 * may call any sched_* function. run, precheck and the event callback are
 * called from the scheduler thread; they must not block for long, and must
 * not call sched_sync(), sched_wait_idle() or sched_free() (they wait for
 * that very thread).
 */
#ifndef VDSFS_SCHEDULER_H
#define VDSFS_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "copier.h"

struct sched;
struct sched_job;

enum sched_event_type {
	SCHED_EV_QUEUED,
	SCHED_EV_STARTED,
	SCHED_EV_PROGRESS,
	SCHED_EV_FINISHED,
	SCHED_EV_FAILED,
	SCHED_EV_CANCELLED,
};

#define SCHED_NAME_LEN 128
struct sched_event {
	uint64_t seq;              /* 1, 2, 3, ... in delivery order */
	uint64_t ts_ns;            /* CLOCK_MONOTONIC */
	enum sched_event_type type;
	uint64_t job;              /* job id */
	uint32_t src_ds, dst_ds;
	void *user;
	uint64_t done, total;      /* progress / finished */
	uint64_t resumed_from;
	uint64_t checkpointed;     /* durable offset of a copy (resume point) */
	unsigned flags;            /* copier_progress.flags */
	double rate;
	int status;                /* finished 0, failed -errno, cancelled -ECANCELED */
	char name[SCHED_NAME_LEN];
	char msg[COPIER_MSG_LEN];  /* failed: why */
};
typedef void (*sched_event_fn)(void *arg, const struct sched_event *ev);

struct sched_opts {
	unsigned max_running;      /* 0 = 4 */
	unsigned per_ds;           /* running jobs per datastore; 0 = 1 */
	bool keep_log;             /* keep every event for sched_log() */
	sched_event_fn on_event;
	void *event_arg;
};

struct sched_job_ops {
	/* Start the work; call sched_job_done() when it ends (now or later,
	 * from any thread). The slot stays busy until then. */
	void (*run)(struct sched_job *job);
	/* Optional: asked to stop a running job (still must call done). */
	void (*cancel)(struct sched_job *job);
	/* Optional: called before "started"; non-zero refuses the job with msg. */
	int (*precheck)(struct sched_job *job, char *msg, size_t len);
	/* Optional: called once the job is over and its last event delivered. */
	void (*release)(struct sched_job *job);
};

struct sched *sched_new(const struct sched_opts *opts);
/* Cancels everything, waits for running jobs to call done, frees. */
void sched_free(struct sched *s);

/* Per-datastore overrides of opts.per_ds and of its rate limit (bytes/s,
 * used by copy jobs; 0 = unlimited). */
int sched_set_ds_limit(struct sched *s, uint32_t ds, unsigned k);
/* Change opts.max_running at run time; lowering it stops no running job. */
int sched_set_max_running(struct sched *s, unsigned n);
int sched_set_ds_rate(struct sched *s, uint32_t ds, uint64_t bytes_per_sec);
/* The shared limiter of a datastore (created on first use; owned by s). */
struct copier_limiter *sched_ds_limiter(struct sched *s, uint32_t ds);

/* Queue a job. Returns its id (> 0), or 0 when out of memory or when ops has
 * no run or a datastore id is >= 65536. */
uint64_t sched_submit(struct sched *s, uint32_t src_ds, uint32_t dst_ds,
		      const char *name, const struct sched_job_ops *ops,
		      void *user);

struct sched_copy_spec {
	int src_dirfd;
	const char *src_rel;
	int dst_dirfd;
	const char *dst_rel;       /* temporary name copier_copy() writes */
	const char *final_rel;     /* if set: renamed to this after success */
	struct copier_opts opts;   /* limiters of both datastores are appended */
};
/* Queue a file copy (the default run). spec's strings are copied. */
uint64_t sched_submit_copy(struct sched *s, uint32_t src_ds, uint32_t dst_ds,
			   const char *name, const struct sched_copy_spec *spec,
			   void *user);

/* Cancel a queued (removed at once) or running (asked to stop) job. */
int sched_cancel(struct sched *s, uint64_t id);

/* For run callbacks: who am I, report progress, end. */
uint64_t sched_job_id(const struct sched_job *job);
void *sched_job_user(const struct sched_job *job);
uint32_t sched_job_src(const struct sched_job *job);
uint32_t sched_job_dst(const struct sched_job *job);
bool sched_job_cancelled(const struct sched_job *job);
void sched_job_progress(struct sched_job *job, const struct copier_progress *p);
/* status 0 finished, -ECANCELED cancelled, other -errno failed (msg may be NULL). */
void sched_job_done(struct sched_job *job, int status, const char *msg);

/* Block until no job is queued or running and every event is delivered. */
void sched_wait_idle(struct sched *s);
/* Block until the scheduler has acted on everything submitted/done so far
 * and delivered the resulting events (jobs may still run). */
void sched_sync(struct sched *s);
/* Copy of the event log (needs keep_log). Caller frees *evs. */
int sched_log(struct sched *s, struct sched_event **evs, size_t *n);

const char *sched_event_name(enum sched_event_type t);

#endif
