/* metrics.c - see metrics.h.
 *
 * The text is made family by family (HELP, TYPE, then every sample of that name),
 * as the exposition format wants them grouped. Label values are escaped as it says
 * (backslash, double quote, newline). Only active migrations get series of their
 * own: a finished one would leave a series behind in Prometheus for every
 * migration ever run; the outcomes are in the counters instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "errmsg.h"
#include "iostat.h"
#include "lock.h"
#include "log.h"
#include "metrics.h"
#include "mig.h"
#include "mountinfo.h"
#include "store.h"

/* What one text needs of the datastores, read once: slots [0, n) as they were
 * then, a removed one (store_live false) marked so that every family skips it, and
 * a slot added meanwhile left out of this text rather than read half filled. */
struct ds_snap {
	bool live;
	bool maint;
	uint64_t size, free, held, files;
	int migrations;
	char fs[64];
};

#define FOR_LIVE(i, n, snap)	for (int i = 0; i < (n); i++) if ((snap)[i].live)

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void label_value(FILE *f, const char *v)
{
	fputc('"', f);
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
	fputc('"', f);
}

/* A number as the format reads it, without a needless exponent. */
static void seconds(FILE *f, uint64_t ns)
{
	char buf[48];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "%" PRIu64 ".%09" PRIu64, ns / 1000000000u,
				    ns % 1000000000u);

	while (buf[n - 1] == '0')
		buf[--n] = 0;
	if (buf[n - 1] == '.')
		buf[--n] = 0;
	fputs(buf, f);
}

static void ds_label(FILE *f, const char *metric, const struct datastore *d)
{
	fprintf(f, "%s{datastore=", metric);
	label_value(f, d->name);
	fputc('}', f);
}

static void ds_gauges(FILE *f, const struct store *s, int n, const struct ds_snap *snap)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} g[] = {
		{ "vdsfs_datastore_size_bytes", "Size of the filesystem that holds the datastore (statvfs).",
		  offsetof(struct ds_snap, size) },
		{ "vdsfs_datastore_free_bytes", "Bytes free for vdsfs on the datastore's filesystem (statvfs f_bavail).",
		  offsetof(struct ds_snap, free) },
		{ "vdsfs_datastore_held_bytes", "Bytes allocated to the regular files of the datastore, .vdsfs/ excluded.",
		  offsetof(struct ds_snap, held) },
		{ "vdsfs_datastore_files", "Regular files on the datastore, .vdsfs/ excluded.",
		  offsetof(struct ds_snap, files) },
	};

	family(f, "vdsfs_datastore_info", "gauge", "A datastore of the mount: its path and filesystem type.");
	FOR_LIVE(i, n, snap) {
		fputs("vdsfs_datastore_info{datastore=", f);
		label_value(f, s->ds[i].name);
		fputs(",path=", f);
		label_value(f, s->ds[i].path);
		fputs(",fs=", f);
		label_value(f, snap[i].fs);
		fputs("} 1\n", f);
	}
	for (size_t k = 0; k < sizeof(g) / sizeof(g[0]); k++) {
		family(f, g[k].name, "gauge", g[k].help);
		FOR_LIVE(i, n, snap) {
			ds_label(f, g[k].name, &s->ds[i]);
			fprintf(f, " %" PRIu64 "\n", *(const uint64_t *)((const char *)&snap[i] + g[k].off));
		}
	}
	family(f, "vdsfs_datastore_maintenance", "gauge",
	       "1 while the datastore is in maintenance: no new file, directory or migration lands on it.");
	FOR_LIVE(i, n, snap) {
		ds_label(f, "vdsfs_datastore_maintenance", &s->ds[i]);
		fprintf(f, " %d\n", snap[i].maint);
	}
	family(f, "vdsfs_datastore_migrations", "gauge", "Active migrations from or to the datastore.");
	FOR_LIVE(i, n, snap) {
		ds_label(f, "vdsfs_datastore_migrations", &s->ds[i]);
		fprintf(f, " %d\n", snap[i].migrations);
	}
}

/* name{labels,le="..."} for every bucket, then _sum and _count. labels is "" or
 * `key="value"` already escaped. */
static void histogram(FILE *f, const char *name, const char *labels, const struct vds_buckets *b,
		      const struct vds_hist_snap *h)
{
	const char *sep = labels[0] ? "," : "";

	for (unsigned i = 0; i < b->n; i++) {
		fprintf(f, "%s_bucket{%s%sle=\"", name, labels, sep);
		seconds(f, b->le_ns[i]);
		fprintf(f, "\"} %" PRIu64 "\n", h->cum[i]);
	}
	fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep, h->count);
	fprintf(f, "%s_sum%s%s%s ", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "");
	seconds(f, h->sum_ns);
	fprintf(f, "\n%s_count%s%s%s %" PRIu64 "\n", name, labels[0] ? "{" : "", labels,
		labels[0] ? "}" : "", h->count);
}

/* `datastore="name"` escaped, in buf. */
static void ds_labels(char *buf, size_t len, const char *name)
{
	FILE *f = fmemopen(buf, len, "w");

	buf[0] = 0;
	if (!f)
		return;
	fputs("datastore=", f);
	label_value(f, name);
	fclose(f);
}

static void ds_io(FILE *f, struct store *s, int n, const struct ds_snap *snap)
{
	char labels[128], name[64], help[160];

	for (int op = 0; op < DS_NOPS; op++) {
		const char *o = ds_op_name((enum ds_op)op);

		if (op != DS_FLUSH) {
			snprintf(name, sizeof(name), "vdsfs_%s_bytes_total", o);
			snprintf(help, sizeof(help), "Bytes %s through the mount, by the datastore of the file.",
				 op == DS_READ ? "read" : "written");
			family(f, name, "counter", help);
			FOR_LIVE(i, n, snap) {
				ds_label(f, name, &s->ds[i]);
				fprintf(f, " %" PRIu64 "\n", atomic_load_explicit(&s->io[i].op[op].bytes,
										   memory_order_relaxed));
			}
		}
		snprintf(name, sizeof(name), "vdsfs_%s_errors_total", o);
		snprintf(help, sizeof(help), "%s requests that failed, by the datastore of the file.",
			 op == DS_READ ? "Read" : op == DS_WRITE ? "Write" : "Flush (fsync)");
		family(f, name, "counter", help);
		FOR_LIVE(i, n, snap) {
			ds_label(f, name, &s->ds[i]);
			fprintf(f, " %" PRIu64 "\n", atomic_load_explicit(&s->io[i].op[op].errors,
									   memory_order_relaxed));
		}
		snprintf(name, sizeof(name), "vdsfs_%s_duration_seconds", o);
		snprintf(help, sizeof(help), "Time %s requests took in the daemon, a switch's pause included.",
			 op == DS_FLUSH ? "flush (fsync)" : o);
		family(f, name, "histogram", help);
		FOR_LIVE(i, n, snap) {
			struct vds_hist_snap h;

			vds_hist_read(&s->io[i].op[op].lat, &vds_io_buckets, &h);
			ds_labels(labels, sizeof(labels), s->ds[i].name);
			histogram(f, name, labels, &vds_io_buckets, &h);
		}
	}
}

static void mig_labels(FILE *f, const char *metric, const struct mig_info *m)
{
	fprintf(f, "%s{id=\"%" PRIu64 "\",path=", metric, m->id);
	label_value(f, m->path);
	fputs(",from=", f);
	label_value(f, m->from);
	fputs(",to=", f);
	label_value(f, m->to);
}

static void migrations(FILE *f, struct migs *g)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} gauges[] = {
		{ "vdsfs_migration_copied_bytes", "Bytes of the file copied to the destination so far.",
		  offsetof(struct mig_info, bytes_copied) },
		{ "vdsfs_migration_size_bytes", "Bytes the copy has to make (the file's data).",
		  offsetof(struct mig_info, bytes_total) },
		{ "vdsfs_migration_diff_bytes", "Bytes the differencing file holds.",
		  offsetof(struct mig_info, diff_bytes) },
	};
	struct mig_info *list = NULL;
	size_t n = 0;
	uint64_t dropped;

	if (mig_list(g, 0, &list, &n, &dropped))
		n = 0;
	family(f, "vdsfs_migration_phase", "gauge",
	       "The phase of each active migration: 1 for the phase it is in, 0 for the others.");
	for (size_t i = 0; i < n; i++) {
		if (mig_phase_final(list[i].phase))
			continue;
		for (int p = MIG_QUEUED; p < MIG_DONE; p++) {
			mig_labels(f, "vdsfs_migration_phase", &list[i]);
			fprintf(f, ",phase=\"%s\"} %d\n", mig_phase_name((enum mig_phase)p),
				list[i].phase == (enum mig_phase)p);
		}
	}
	for (size_t k = 0; k < sizeof(gauges) / sizeof(gauges[0]); k++) {
		family(f, gauges[k].name, "gauge", gauges[k].help);
		for (size_t i = 0; i < n; i++) {
			if (mig_phase_final(list[i].phase))
				continue;
			mig_labels(f, gauges[k].name, &list[i]);
			fprintf(f, "} %" PRIu64 "\n",
				*(const uint64_t *)((const char *)&list[i] + gauges[k].off));
		}
	}
	family(f, "vdsfs_migration_rate_bytes_per_second", "gauge", "Recent copy rate of each active migration.");
	for (size_t i = 0; i < n; i++) {
		if (mig_phase_final(list[i].phase))
			continue;
		mig_labels(f, "vdsfs_migration_rate_bytes_per_second", &list[i]);
		fprintf(f, "} %.17g\n", list[i].rate);
	}
	mig_info_free(list, n);
}

static void totals(FILE *f, struct migs *g)
{
	struct mig_totals t;

	mig_totals(g, &t);
	family(f, "vdsfs_migrations_active", "gauge", "Migrations queued or running.");
	fprintf(f, "vdsfs_migrations_active %" PRIu64 "\n", t.active);
	family(f, "vdsfs_migrations_registered_total", "counter",
	       "Migrations queued since the mount, those found by crash recovery included.");
	fprintf(f, "vdsfs_migrations_registered_total %" PRIu64 "\n", t.registered);
	family(f, "vdsfs_migrations_total", "counter", "Migrations ended since the mount, by result.");
	fprintf(f, "vdsfs_migrations_total{result=\"done\"} %" PRIu64 "\n", t.done);
	fprintf(f, "vdsfs_migrations_total{result=\"failed\"} %" PRIu64 "\n", t.failed);
	fprintf(f, "vdsfs_migrations_total{result=\"cancelled\"} %" PRIu64 "\n", t.cancelled);
	family(f, "vdsfs_switch_pause_seconds", "histogram",
	       "How long each switch paused the migrating file's I/O.");
	histogram(f, "vdsfs_switch_pause_seconds", "", &vds_pause_buckets, &t.pauses);
}

char *metrics_text(const struct store *cs, struct migs *g)
{
	struct store *s = (struct store *)cs;	/* the counters are atomics, read only */
	struct ds_snap snap[VDS_MAX_DS];
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	int n = atomic_load(&s->nds);

	for (int i = 0; i < n; i++) {
		memset(&snap[i], 0, sizeof(snap[i]));
		if (!(snap[i].live = store_live(s, i)))
			continue;
		snap[i].maint = atomic_load(&s->maint[i]);
		ds_space(&s->ds[i], &snap[i].free, &snap[i].size);
		snap[i].held = store_usage(&s->ds[i], &snap[i].files);
		snap[i].migrations = mig_active_on(g, i);
		mount_type_of(s->ds[i].path, false, snap[i].fs, sizeof(snap[i].fs));
	}
	f = open_memstream(&text, &len);
	if (!f)
		return NULL;
	family(f, "vdsfs_build_info", "gauge", "The vdsfs version serving the mount.");
	fputs("vdsfs_build_info{version=", f);
	label_value(f, VDS_VERSION);
	fputs("} 1\n", f);
	ds_gauges(f, s, n, snap);
	ds_io(f, s, n, snap);
	totals(f, g);
	migrations(f, g);
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	return text;
}

/* --- the file ------------------------------------------------------------------ */

static int write_file(struct metrics_file *mf)
{
	char *text = metrics_text(mf->store, mf->migs);
	size_t n = text ? strlen(text) : 0;
	int fd, ret = 0;

	if (!text)
		return -ENOMEM;
	fd = open(mf->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		ret = -errno;
	else if (write(fd, text, n) != (ssize_t)n)
		ret = errno ? -errno : -EIO;
	if (fd >= 0 && close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret && rename(mf->tmp, mf->path) < 0)
		ret = -errno;
	if (ret && fd >= 0)
		unlink(mf->tmp);
	free(text);
	return ret;
}

int metrics_file_open(struct metrics_file *mf, const struct store *s, struct migs *g,
		      const char *path, double interval, char *err, size_t len)
{
	int ret;

	memset(mf, 0, sizeof(*mf));
	mf->store = s;
	mf->migs = g;
	mf->interval = interval;
	pthread_mutex_init(&mf->lock, NULL);
	pthread_cond_init(&mf->wake, NULL);
	mf->path = strdup(path);
	if (!mf->path || asprintf(&mf->tmp, "%s.tmp", path) < 0) {
		mf->tmp = NULL;
		return vds_err(err, len, -ENOMEM, "out of memory");
	}
	ret = write_file(mf);
	if (ret)
		return vds_err(err, len, ret, "metrics=%s: cannot write %s: %s", path, mf->tmp,
			       strerror(-ret));
	return 0;
}

/* A failed write leaves the previous file, stale: the log says so when it starts
 * failing (or fails otherwise) and when it works again, not every round. */
static void note(struct metrics_file *mf, int ret)
{
	if (ret && ret != mf->last_err)
		vds_log(LOG_WARNING, "vdsfs: metrics=%s: cannot write it: %s; the file is stale\n",
			mf->path, strerror(-ret));
	else if (!ret && mf->last_err)
		vds_log(LOG_NOTICE, "vdsfs: metrics=%s: written again\n", mf->path);
	mf->last_err = ret;
}

static void *writer(void *arg)
{
	struct metrics_file *mf = arg;
	uint64_t step = (uint64_t)(mf->interval * 1e9);
	struct timespec until;
	bool stop;

	for (;;) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += (time_t)(step / 1000000000u);
		until.tv_nsec += (long)(step % 1000000000u);
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		lk_lock(&mf->lock, LK_LEAF);
		while (!mf->stopping && pthread_cond_timedwait(&mf->wake, &mf->lock, &until) != ETIMEDOUT)
			;
		stop = mf->stopping;
		lk_unlock(&mf->lock, LK_LEAF);
		if (stop)
			return NULL;	/* the last file is metrics_file_write's */
		note(mf, write_file(mf));
	}
}

int metrics_file_start(struct metrics_file *mf)
{
	int ret = pthread_create(&mf->thread, NULL, writer, mf);

	mf->running = ret == 0;
	return -ret;
}

void metrics_file_stop(struct metrics_file *mf)
{
	if (!mf->running)
		return;
	lk_lock(&mf->lock, LK_LEAF);
	mf->stopping = true;
	pthread_cond_signal(&mf->wake);
	lk_unlock(&mf->lock, LK_LEAF);
	pthread_join(mf->thread, NULL);
	mf->running = false;
}

void metrics_file_write(struct metrics_file *mf)
{
	if (mf->path)
		note(mf, write_file(mf));
}

void metrics_file_free(struct metrics_file *mf)
{
	metrics_file_stop(mf);
	if (!mf->path)
		return;
	pthread_cond_destroy(&mf->wake);
	pthread_mutex_destroy(&mf->lock);
	free(mf->path);
	free(mf->tmp);
	mf->path = mf->tmp = NULL;
}
