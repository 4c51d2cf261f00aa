/* sched_int.h -- the scheduler's state, shared by sched.c (API and
 * events), sched_ds.c (datastore accounting) and sched_loop.c (the thread).
 *
 * Locking: s->lock guards every field of struct sched and the fields of
 * struct sched_job marked below; nothing else in the scheduler has a lock.
 * Functions declared here that take a struct sched and are not sched_main
 * expect s->lock held.
 */
#ifndef VDSFS_SCHED_INT_H
#define VDSFS_SCHED_INT_H

#include <pthread.h>

#include "internal.h"
#include "scheduler.h"

enum job_state { JOB_QUEUED, JOB_STARTING, JOB_RUNNING, JOB_DONE };

struct sched_job {
	struct sched *s;
	uint64_t id;
	uint32_t src, dst;
	char name[SCHED_NAME_LEN];
	struct sched_job_ops ops;
	void *user, *impl;
	atomic_bool cancel;              /* read by the job's own code */
	/* fields below: guarded by s->lock */
	enum job_state state;
	bool cancel_asked;               /* ops.cancel still to be called */
	struct copier_progress last;     /* latest progress, for the end event */
	struct sched_job *prev, *next;   /* s->jobs, in submission order */
};

struct ds {
	unsigned running;                /* jobs using it (src or dst) */
	unsigned limit;                  /* 0: s->per_ds */
	struct copier_limiter *lim;      /* created on demand, freed with s */
};

struct sched {
	pthread_mutex_t lock;            /* guards everything below */
	pthread_cond_t wake;             /* to the scheduler thread: work */
	pthread_cond_t idle;             /* from it: gen_done moved */
	pthread_t thread;
	unsigned max_running, per_ds;
	sched_event_fn on_event;
	void *event_arg;
	bool keep_log, stop;
	struct ds *ds;
	uint32_t nds;
	struct sched_job *head, *tail;   /* all live jobs, submission order */
	unsigned running, queued;
	uint64_t next_id, seq, gen_req, gen_done;
	struct sched_event *pending, *log;
	size_t npending, cap_pending, nlog, cap_log;
};

#define SCHED_MAX_DS 65536u

/* sched_ds.c, under lock */
bool sched_can_start(struct sched *s, const struct sched_job *j);
void sched_ds_count(struct sched *s, const struct sched_job *j, int delta);

/* sched.c, under lock */
void sched_emit(struct sched *s, struct sched_job *j, enum sched_event_type t,
		int status, const char *msg);
bool sched_idle(const struct sched *s);

/* sched_loop.c: the scheduler thread's body */
void *sched_main(void *arg);

#endif
