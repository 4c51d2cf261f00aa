/* metrics.h - the daemon's state as Prometheus text: what `vdsctl metrics` prints
 * and what -o metrics=PATH keeps in a file for node_exporter's textfile collector.
 *
 * One text, made in one place (metrics.c) from what the layers below expose: the
 * datastores (space, bytes and files held, active migrations), their I/O counters
 * and latency histograms (store/iostat.h), the migrations (each active one, the
 * totals since the mount, the switch pauses). The names follow Prometheus's rules:
 * a vdsfs_ prefix, base units (bytes, seconds), _total on counters.
 *
 * The file (metrics_file_*) is replaced whole: written to PATH.tmp and renamed
 * over PATH, every interval seconds by a thread of its own, and once more at exit
 * (metrics_file_write), so a reader sees the previous text or the next, never half
 * of one. The text reads the migration registry: the writer must be stopped
 * before migs_shutdown frees its records.
 * Locking: mf->lock (LK_LEAF) guards `stopping` alone; no lock is held while the
 * text is made or written.
 */
#ifndef VDS_METRICS_H
#define VDS_METRICS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct migs;
struct store;

/* The text (malloc'd), or NULL out of memory. Walks every datastore's tree for
 * the bytes and files held, as `vdsctl datastores` does. */
char *metrics_text(const struct store *s, struct migs *g);

struct metrics_file {
	const struct store *store;
	struct migs *migs;
	char *path, *tmp;
	double interval;		/* seconds */
	pthread_t thread;
	bool running;
	pthread_mutex_t lock;		/* LK_LEAF: stopping */
	pthread_cond_t wake;
	bool stopping;
	int last_err;			/* the writer's alone: its last write's result */
};

/* Write the file once (before the mount: a path that cannot be written is refused
 * like bad input, with one line in err). */
int metrics_file_open(struct metrics_file *mf, const struct store *s, struct migs *g,
		      const char *path, double interval, char *err, size_t len);
/* Rewrite it every interval (a thread; after daemonizing). */
int metrics_file_start(struct metrics_file *mf);
/* Stop the thread (before migs_shutdown). Idempotent. */
void metrics_file_stop(struct metrics_file *mf);
/* Write the file now, from a thread that no migs_shutdown runs beside (the last
 * file: after it, the registry lists nothing and keeps its totals). No-op without
 * a path. */
void metrics_file_write(struct metrics_file *mf);
void metrics_file_free(struct metrics_file *mf);

#endif
