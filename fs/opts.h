/* opts.h - the vdsfs command line, parsed without side effects.
 *
 * opts_parse() only reads argv and fills a struct vds_opts; it opens nothing and
 * mounts nothing, so every bad-input case can be unit-tested and reported before the
 * daemon touches the system. Options meant for libfuse are collected verbatim in
 * fuse_opts and validated by libfuse itself (which knows its own list).
 * libfuse's fuse_opt_parse() walks argv and splits -o lists; each of our own keys
 * is one row of a table in opts.c (its template and the function that checks it).
 */
#ifndef VDS_OPTS_H
#define VDS_OPTS_H

#include <stdbool.h>
#include <stddef.h>

#include "dsspec.h"	/* VDS_MAX_DS, VDS_NAME_MAX, struct vds_ds_spec */
#include "placement.h"	/* enum vds_create_policy */

#define VDS_ERR_LEN	256

/* How the kernel's requests reach the daemon: FUSE over io_uring when the kernel
 * offers it (auto), always (on: refuse to mount without it), or never. */
enum vds_io_uring { VDS_IO_URING_AUTO, VDS_IO_URING_ON, VDS_IO_URING_OFF };

struct vds_opts {
	struct vds_ds_spec ds[VDS_MAX_DS];
	int nds;
	char *mountpoint;
	bool foreground;
	bool debug;
	bool help;
	bool version;
	enum vds_create_policy create;
	char create_name[VDS_NAME_MAX + 1];
	char *control;		/* control socket path; NULL = default */
	char *control_group;	/* group also allowed on the control socket; NULL = none */
	unsigned threads;	/* FUSE worker threads */
	enum vds_io_uring io_uring;
	bool sync_io;		/* async_io=off: workers do backing I/O themselves */
	double timeout;		/* entry and attribute cache timeout, seconds */
	bool no_resume;		/* resume=off: recovery rolls back instead */
	bool oom_set;		/* oom_score_adj= given */
	int oom_score_adj;	/* its value, -1000..1000 */
	char *metrics;		/* Prometheus text file to keep current; NULL = none */
	double metrics_interval;	/* seconds between its rewrites */
	char *fuse_opts;	/* comma list handed to libfuse, never NULL after parse */
};

int opts_parse(struct vds_opts *o, int argc, char **argv, char *err, size_t errlen);
void opts_free(struct vds_opts *o);
void opts_usage(const char *argv0);

#endif
