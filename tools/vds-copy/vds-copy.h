/* vds-copy.h -- shared state of the vds-copy tool (args.c, output.c, main.c).
 *
 * The tool is a thin shell around the copier library: it names datastores
 * as vdsfs does (NAME=PATH), turns "SRC:relpath=DST" into scheduler copy
 * jobs, and prints the scheduler's events. Output callbacks run on the
 * scheduler thread only; main() reads the counters after sched_wait_idle(),
 * whose mutex orders those reads after the writes.
 */
#ifndef VDS_COPY_H
#define VDS_COPY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "copier.h"
#include "dsspec.h"
#include "scheduler.h"

#define VC_MAX_JOBS 1024

struct vc_ds {
	const char *name, *path;	/* in vc->spec[] */
	int fd;
	uint64_t rate;        /* bytes/s, 0 = none */
};

struct vc_job {
	uint32_t src, dst;    /* indexes into ds[] */
	char *rel;            /* same relative path on both sides */
	char *label;          /* "SRC:rel" */
	int dst_dirfd;        /* parent directory of the destination */
	char *dst_base, *part_base;
	uint64_t id;          /* written by main after submit; signal thread reads */
	uint64_t done, total; /* latest progress (output.c) */
	double rate;
	bool running, started;
};

struct vc {
	struct vds_ds_spec spec[VDS_MAX_DS];	/* as parsed: name and path */
	struct vc_ds ds[VDS_MAX_DS];
	unsigned nds;
	struct vc_job jobs[VC_MAX_JOBS];
	unsigned njobs;
	unsigned parallel, per_ds;
	uint64_t bwlimit_all, job_bwlimit;
	struct copier_opts copy;
	bool json, quiet, force, tty;
	bool keep_failed;     /* --keep-partial: keep partials of failed jobs too */
	/* written by output.c on the scheduler thread */
	unsigned finished, failed, cancelled;
	uint64_t t0_ns;
};

static inline uint64_t vc_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

enum { VC_HELP = 1, VC_VERSION };
int vc_parse_args(struct vc *vc, int argc, char **argv);
void vc_usage(FILE *f);

void vc_on_event(void *arg, const struct sched_event *ev);
void vc_print_summary(struct vc *vc);

#endif
