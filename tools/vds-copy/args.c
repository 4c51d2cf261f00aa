/* args.c -- vds-copy's command line.
 *
 * Positional arguments are told apart by shape: "NAME=PATH" names a
 * datastore ("A=/x:B=/y" two, as vdsfs takes them), "SRC:relpath=DST" is a job
 * (the colon comes before the first '='). Jobs may refer to datastores named later on the line; names are
 * resolved once everything is read. Every error is one line on stderr and
 * exit status 2, decided in main().
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsspec.h"
#include "size.h"
#include "vds-copy.h"

void vc_usage(FILE *f)
{
	fputs("usage: vds-copy [OPTIONS] NAME=PATH[:NAME=PATH...]... SRC:relpath=DST...\n"
	      "Copy files between datastore directories, up to --parallel at once and\n"
	      "never two at once on one datastore (sparse-aware, O_DIRECT, resumable).\n"
	      "A job SRC:relpath=DST copies SRC's relpath to the same relpath in DST,\n"
	      "through a temporary \"relpath.vds-copy-part\" renamed into place when done.\n"
	      "\n"
	      "  -p, --parallel N          copies at once (default 4)\n"
	      "  -k, --per-datastore K     copies at once per datastore (default 1)\n"
	      "  -b, --bwlimit RATE        limit every datastore to RATE bytes/s\n"
	      "  -b, --bwlimit NAME=RATE   limit one datastore\n"
	      "      --job-bwlimit RATE    limit every single copy\n"
	      "  -V, --verify              compare checksums of source and copy\n"
	      "  -j, --json                one JSON object per event on stdout\n"
	      "  -q, --quiet               print errors only\n"
	      "  -f, --force               replace destination files that exist\n"
	      "      --no-resume           start over even if a checkpoint exists\n"
	      "      --keep-partial        keep partial copies of failed jobs too (those of\n"
	      "                            cancelled jobs are always kept for a resume)\n"
	      "      --no-direct           never use O_DIRECT\n"
	      "      --no-space-check      skip the free-space pre-check\n"
	      "      --space-margin BYTES  free space to leave (default 64M)\n"
	      "      --checkpoint-every BYTES  resume granularity (default 256M)\n"
	      "      --queue-depth N       I/Os in flight per copy (default 16)\n"
	      "      --chunk-size BYTES    bytes per I/O (default 1M)\n"
	      "  -h, --help                this text\n"
	      "      --version             the version\n"
	      "BYTES and RATE (bytes/s):\n"
	      "  " VDS_SIZE_SYNTAX ".\n"
	      "--json prints one object per line: seq, ts (monotonic seconds), event\n"
	      "(queued, started, progress, finished, failed, cancelled), job, name, src,\n"
	      "dst; progress and finished add done, total (data bytes), rate, checkpointed,\n"
	      "resumed_from, direct; failed and cancelled add errno and error.\n"
	      "Exit status: 0 all copied, 1 some copy failed or was cancelled, 2 usage.\n", f);
}

static int find_ds(struct vc *vc, const char *name, size_t len)
{
	return vds_ds_find(vc->spec, (int)vc->nds, name, len);
}

/* "A=/x" or "A=/x:B=/y", as vdsfs takes them; vc->ds[] points into vc->spec[]. */
static int add_ds(struct vc *vc, const char *arg)
{
	int n = (int)vc->nds;
	char err[512];
	int ret = vds_ds_parse(vc->spec, &n, arg, err, sizeof(err));

	for (; vc->nds < (unsigned)n; vc->nds++) {
		vc->ds[vc->nds].name = vc->spec[vc->nds].name;
		vc->ds[vc->nds].path = vc->spec[vc->nds].path;
		vc->ds[vc->nds].fd = -1;
	}
	if (ret)
		fprintf(stderr, "vds-copy: %s\n", err);
	return ret;
}

/* A ".." component could leave the datastore. */
static bool has_dotdot(const char *p)
{
	size_t n;

	while (*p) {
		n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return true;
		p += n;
		p += strspn(p, "/");
	}
	return false;
}

/* Jobs keep their text until every datastore is known. */
static char *pending_jobs[VC_MAX_JOBS];
static unsigned npending;

static int resolve_job(struct vc *vc, const char *arg)
{
	const char *colon = strchr(arg, ':'), *eq = strchr(colon, '=');
	struct vc_job *j = &vc->jobs[vc->njobs];
	int s = find_ds(vc, arg, (size_t)(colon - arg));
	int d = eq ? find_ds(vc, eq + 1, strlen(eq + 1)) : -1;

	if (!eq || eq == colon + 1 || s < 0 || d < 0) {
		fprintf(stderr, "vds-copy: bad job '%s' (want SRC:relpath=DST with named datastores)\n", arg);
		return -1;
	}
	j->src = (uint32_t)s;
	j->dst = (uint32_t)d;
	j->rel = strndup(colon + 1, (size_t)(eq - colon - 1));
	while (j->rel[0] == '/')
		memmove(j->rel, j->rel + 1, strlen(j->rel));
	j->label = strndup(arg, (size_t)(eq - arg));
	j->dst_dirfd = -1;
	if (!j->rel[0] || has_dotdot(j->rel)) {
		fprintf(stderr, "vds-copy: bad relative path in '%s'\n", arg);
		return -1;
	}
	for (unsigned k = 0; k < vc->njobs; k++)
		if (vc->jobs[k].dst == j->dst && !strcmp(vc->jobs[k].rel, j->rel)) {
			fprintf(stderr, "vds-copy: two jobs write %s in %s\n", j->rel, vc->ds[j->dst].name);
			return -1;
		}
	vc->njobs++;
	return 0;
}

/* A size option's value, or -1 with the message printed. */
static int parse_size(const char *what, const char *arg, uint64_t *out)
{
	char err[512];

	if (!vds_size_parse(what, arg, UINT64_MAX, out, err, sizeof(err)))
		return 0;
	fprintf(stderr, "vds-copy: %s\n", err);
	return -1;
}

/* --bwlimit RATE or --bwlimit NAME=RATE; sizes never contain '='. */
static int set_ds_rate(struct vc *vc, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char what[64];
	int i;

	if (!eq)
		return parse_size("--bwlimit", arg, &vc->bwlimit_all);
	i = find_ds(vc, arg, (size_t)(eq - arg));
	if (i < 0) {
		fprintf(stderr, "vds-copy: --bwlimit %s: no datastore named '%.*s'\n", arg,
			(int)(eq - arg), arg);
		return -1;
	}
	snprintf(what, sizeof(what), "--bwlimit of %s", vc->ds[i].name);
	return parse_size(what, eq + 1, &vc->ds[i].rate);
}

enum { O_JOBBW = 256, O_NORESUME, O_KEEP, O_NODIRECT, O_NOSPACE, O_MARGIN,
       O_CKPT, O_QD, O_CHUNK, O_VERSION };

static const struct option longopts[] = {
	{ "parallel", required_argument, NULL, 'p' },
	{ "per-datastore", required_argument, NULL, 'k' },
	{ "bwlimit", required_argument, NULL, 'b' },
	{ "job-bwlimit", required_argument, NULL, O_JOBBW },
	{ "verify", no_argument, NULL, 'V' },
	{ "json", no_argument, NULL, 'j' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "force", no_argument, NULL, 'f' },
	{ "no-resume", no_argument, NULL, O_NORESUME },
	{ "keep-partial", no_argument, NULL, O_KEEP },
	{ "no-direct", no_argument, NULL, O_NODIRECT },
	{ "no-space-check", no_argument, NULL, O_NOSPACE },
	{ "space-margin", required_argument, NULL, O_MARGIN },
	{ "checkpoint-every", required_argument, NULL, O_CKPT },
	{ "queue-depth", required_argument, NULL, O_QD },
	{ "chunk-size", required_argument, NULL, O_CHUNK },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, O_VERSION },	/* -V is --verify */
	{ NULL, 0, NULL, 0 },
};

static const char *opt_name(int c)
{
	for (const struct option *o = longopts; o->name; o++)
		if (o->val == c)
			return o->name;
	return "?";
}

static int parse_uint(int c, const char *s, unsigned *out, unsigned max)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*end || end == s || *s == '-' || v == 0 || v > max) {
		fprintf(stderr, "vds-copy: --%s '%s': expected a whole number 1-%u\n", opt_name(c), s, max);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

/* Options that need the datastore list (per-datastore rates) wait too. */
static char *pending_rates[VDS_MAX_DS];
static unsigned nrates;

/* One option; -1 with the message printed when its value is bad. */
static int parse_opt(struct vc *vc, int c, const char *arg)
{
	uint64_t v;

	switch (c) {
	case 'p': return parse_uint(c, arg, &vc->parallel, 1024);
	case 'k': return parse_uint(c, arg, &vc->per_ds, 1024);
	case 'b':
		if (nrates == VDS_MAX_DS) {
			fprintf(stderr, "vds-copy: --bwlimit given more than %d times\n", VDS_MAX_DS);
			return -1;
		}
		pending_rates[nrates++] = (char *)arg;
		return 0;
	case O_JOBBW: return parse_size("--job-bwlimit", arg, &vc->copy.rate_limit);
	case 'V': vc->copy.verify = true; return 0;
	case 'j': vc->json = true; return 0;
	case 'q': vc->quiet = true; return 0;
	case 'f': vc->force = true; return 0;
	case O_NORESUME: vc->copy.resume = false; return 0;
	case O_KEEP: vc->keep_failed = true; return 0;
	case O_NODIRECT: vc->copy.no_direct = true; return 0;
	case O_NOSPACE: vc->copy.no_space_check = true; return 0;
	case O_MARGIN: return parse_size("--space-margin", arg, &vc->copy.space_margin);
	case O_CKPT: return parse_size("--checkpoint-every", arg, &vc->copy.checkpoint_every);
	case O_QD: return parse_uint(c, arg, &vc->copy.queue_depth, 4096);
	case O_CHUNK:
		if (parse_size("--chunk-size", arg, &v))
			return -1;
		if (v < 4096 || v > (64 << 20) || v % 4096) {
			fprintf(stderr, "vds-copy: --chunk-size %s: expected a multiple of 4K from 4K to 64M\n", arg);
			return -1;
		}
		vc->copy.chunk_size = (size_t)v;
		return 0;
	}
	return -1;
}

/* Returns 0, VC_HELP or VC_VERSION, -1 for a usage error (already reported). */
int vc_parse_args(struct vc *vc, int argc, char **argv)
{
	const char *colon, *eq;
	int c, i;

	vc->parallel = 4;
	vc->per_ds = 1;
	vc->copy.resume = true;
	while ((c = getopt_long(argc, argv, "p:k:b:Vjqfh", longopts, NULL)) != -1) {
		if (c == 'h')
			return VC_HELP;
		if (c == O_VERSION)
			return VC_VERSION;
		if (c == '?' || parse_opt(vc, c, optarg))
			return -1;
	}
	for (i = optind; i < argc; i++) {
		eq = strchr(argv[i], '=');
		colon = strchr(argv[i], ':');
		if (colon && (!eq || colon < eq)) {
			if (npending == VC_MAX_JOBS)
				return fprintf(stderr, "vds-copy: too many jobs\n"), -1;
			pending_jobs[npending++] = argv[i];
		} else if (!eq || add_ds(vc, argv[i])) {
			if (!eq)
				fprintf(stderr, "vds-copy: '%s' is neither NAME=PATH nor SRC:relpath=DST\n", argv[i]);
			return -1;
		}
	}
	for (unsigned k = 0; k < npending; k++)
		if (resolve_job(vc, pending_jobs[k]))
			return -1;
	for (unsigned k = 0; k < nrates; k++)
		if (set_ds_rate(vc, pending_rates[k]))
			return -1;
	if (!vc->njobs)
		return fprintf(stderr, "vds-copy: no jobs given (see --help)\n"), -1;
	return 0;
}
