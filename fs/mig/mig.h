/* mig.h - live migration of files between datastores: what the other layers ask.
 *
 * The flow per file (MIGRATION.md has the whole design):
 *   queued      waiting in the scheduler for its two datastores to be free
 *   preparing   the differencing file is made (journal only; status says copying)
 *   copying     overlay on: the file's route (ns/vfile.h) sends writes to a
 *               differencing file on the SOURCE datastore; the frozen base is copied
 *               into the destination's .vdsfs/
 *   converging  mirror on: every write goes to the differencing file and, under its
 *               region's lock, to the copy; one pass merges what the differencing
 *               file held before. Nothing new can become dirty, so this converges
 *               however fast the writer is.
 *   switching   the file's I/O pauses; the copy becomes the file (mig_switch.c)
 *   done | failed | cancelled
 * Cancel at any phase mirrors into the base instead and drops the overlay.
 *
 * The registry (struct migs) holds every migration of the mount; its state is
 * plain data to the layers above (struct mig_info): the control socket renders it.
 * Migration reaches the namespace only through ns.h and vfile.h, and the datastores
 * through store.h; nothing here knows FUSE or the control protocol's encoding.
 */
#ifndef VDS_MIG_H
#define VDS_MIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"		/* enum mig_phase */

struct migs;
struct ns;
struct store;

/* What a migrate request asks besides its files. */
struct mig_opts {
	uint64_t bwlimit;		/* bytes/s for each copy, 0 = none */
	uint64_t space_margin;		/* free bytes the destination must keep besides */
	bool space_check;		/* false: no check, neither at submit nor while running */
	unsigned parallel;		/* migrations run at once from now on; 0 = as is */
};
#define MIG_SPACE_MARGIN	(64ull << 20)	/* default space_margin */

/* Finished migrations that status and events list: the most recent this many (by
 * the time they finished). Active and stuck ones are always listed. */
#define MIG_KEEP_FINISHED	1000

/* --- daemon lifetime: new, recover (before the mount), start (after daemonizing:
 * it starts threads), shutdown (after the unmount), free --------------------------- */

int migs_new(struct store *s, struct ns *ns, struct migs **out);
/* Finish or undo, before the mount, what a crash interrupted (recover.c). 0 unless
 * a datastore's state folder cannot be read. */
int migs_recover(struct migs *g);
int migs_start(struct migs *g);
/* -o resume=off: recovery rolls back a migration that was copying or converging
 * instead of resuming it. Before migs_recover. */
void migs_set_resume(struct migs *g, bool on);
/* Stop every migration where it is (their journals tell the next mount), wait for
 * their threads. */
void migs_shutdown(struct migs *g);
void migs_free(struct migs *g);

/* --- requests; err gets one line on failure ---------------------------------------- */

/* One move a migrate request names: a file, or a folder meaning every regular file
 * below it, to the datastore called `to`. */
struct mig_move {
	const char *path;
	const char *to;
};
/* Expand, deduplicate, check and queue the moves of one request, all or none: *ids
 * (malloc'd, *nids of them) are the migrations queued, in the order of their files
 * (folders expanded in sorted order). */
int mig_request(struct migs *g, const struct mig_move *mv, size_t n, const struct mig_opts *o,
		uint64_t **ids, size_t *nids, char *err, size_t len);

/* Queue the migration of paths[i] to datastore dsts[i] for every i < n, all or none:
 * every file is checked and pinned before the first is queued. 0 with ids[i] set, or
 * -errno with one line in err and nothing queued. */
int mig_submit(struct migs *g, const char *const *paths, const int *dsts, size_t n,
	       const struct mig_opts *o, uint64_t *ids, char *err, size_t len);
int mig_cancel(struct migs *g, uint64_t id, char *err, size_t len);

/* One migration as status shows it: a copy, made under the registry's lock. */
struct mig_info {
	uint64_t id;
	char *path;			/* current path, malloc'd */
	const char *from, *to;		/* datastore names (the store's, stable) */
	enum mig_phase phase;
	uint64_t bytes_copied, bytes_total, diff_bytes, merged_bytes;
	double rate, eta_s;
	uint64_t copy_ns, converge_ns, flush_ns, pause_ns, cleanup_ns;
	uint64_t queued_ns, started_ns, ended_ns;	/* CLOCK_REALTIME */
	uint64_t started_seq, ended_seq;		/* scheduler order, 0 = not yet */
	bool recovered;
	bool resumed;			/* resumed at mount instead of rolled back */
	uint64_t resumed_from;		/* the copy went on from this offset */
	uint64_t recopied;		/* bytes the resumed copy wrote */
	bool is_error;			/* msg is an error (else a note) */
	char msg[256];			/* "" if none */
	const char *held_at;		/* test builds: the hold point it waits at */
};
/* The listed migrations, oldest first (id 0: all; else that one, if listed): an
 * array to free with mig_info_free. *dropped: finished records dropped so far. */
int mig_list(struct migs *g, uint64_t id, struct mig_info **out, size_t *n, uint64_t *dropped);
void mig_info_free(struct mig_info *list, size_t n);

/* The scheduler's events of the listed migrations, in sequence order. */
struct mig_event {
	uint64_t seq, ts_ns;		/* CLOCK_MONOTONIC */
	const char *event;		/* queued, started, finished, failed, cancelled */
	uint64_t id;
	const char *path;		/* as queued; valid until mig_events_free */
	const char *from, *to;
};
int mig_events(struct migs *g, struct mig_event **out, size_t *n, uint64_t *dropped);
void mig_events_free(struct mig_event *ev, size_t n);

/* The id of the active migration of path, or 0. */
uint64_t mig_of_path(struct migs *g, const char *path);
/* Where path is: 0 with *w filled, or -errno (-EINVAL: not a plain path inside the
 * mount, or through a symlink). */
struct mig_where {
	const char *datastore;		/* the store's name of it */
	bool is_dir;
	uint64_t migration;		/* its active migration, 0 if none */
};
int mig_where(struct migs *g, const char *path, struct mig_where *w);
/* Has id ever been given to a migration (one status no longer lists, say)? */
bool mig_id_used(struct migs *g, uint64_t id);
#define MIG_STR_(x)		#x
#define MIG_STR(x)		MIG_STR_(x)
/* What a request for a migration that is no longer listed is told. */
#define MIG_DROPPED_HINT	" (only the " MIG_STR(MIG_KEEP_FINISHED) " most recently finished are kept)"
/* How many active migrations use datastore ds (as source or destination). */
int mig_active_on(struct migs *g, int ds);

/* --- the namespace's hooks ---------------------------------------------------------
 * Called by name operations with the namespace lock held shared (they only update
 * records in memory); then, after releasing it, mig_sync_journals() writes what they
 * changed to the journals (a journal write is an fsync: never under ns's lock). */
void mig_path_moved(struct migs *g, const char *from, const char *to);
void mig_path_exchanged(struct migs *g, const char *a, const char *b);
void mig_path_unlinked(struct migs *g, const char *path);
void mig_sync_journals(struct migs *g);

#ifdef VDS_TEST_HOOKS
/* Test builds only (testpoint.h): let one migration held at a hold point go on. */
void mig_test_release(struct migs *g);
#endif

#endif
