/* opts.c - parse `vdsfs [options] NAME=PATH[:NAME=PATH...]... MOUNTPOINT`.
 *
 * libfuse's fuse_opt_parse() does the walking: it finds the flags, splits -o lists
 * (a comma inside a value is written "\,"), and hands every word to one callback
 * (parse_one) with the row of `own` it matched, or as a positional argument, or as
 * a word nobody here knows. mount.fuse3 calls us as `vdsfs SOURCE MOUNTPOINT -o
 * OPTS`, so options may come before or after the positional arguments.
 *
 * Our own keys are the rows of `own`: its template and the function that checks
 * its value, so one more option is one row and one small function. Every check is
 * ours (never a sscanf template of libfuse), so each bad value gets its own line.
 * fstab bookkeeping words (defaults, nofail, _netdev, x-*, ...) are dropped because
 * they mean nothing to a running filesystem; every other -o word goes to libfuse's
 * session, which refuses what it does not know. Errors are written to err as one
 * line and returned as -EINVAL: the caller prints them and exits 1 before anything
 * is mounted.
 */
#include <errno.h>
#include <fuse_opt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "opts.h"

#define DEFAULT_THREADS		12
#define DEFAULT_TIMEOUT		60.0
#define DEFAULT_METRICS_INTERVAL 5.0

/* What parse_one works on: the result, the positional arguments seen so far, and
 * where the first error goes. */
struct parse_ctx {
	struct vds_opts *o;
	char **pos;
	int npos;
	char *err;
	size_t len;
	int ret;		/* the first error (-errno), 0 if none */
};

static bool fstab_only(const char *w)
{
	static const char *const words[] = { "defaults", "nofail", "_netdev", "noauto",
		"auto", "user", "users", "nouser", NULL };

	if (!strncmp(w, "x-", 2) || !strncmp(w, "comment=", 8))
		return true;
	for (int i = 0; words[i]; i++)
		if (!strcmp(w, words[i]))
			return true;
	return false;
}

/* fuse_opts is handed to libfuse's session as one -o list, which fuse_opt_parse()
 * splits again: a comma or backslash inside a word is escaped as it was given. */
static int append_fuse_opt(struct vds_opts *o, const char *w)
{
	size_t old = strlen(o->fuse_opts), add = strlen(w);
	char *n;

	for (const char *p = w; *p; p++)
		add += *p == ',' || *p == '\\';
	n = realloc(o->fuse_opts, old + add + 2);
	if (!n)
		return -ENOMEM;
	if (old)
		n[old++] = ',';
	for (; *w; w++) {
		if (*w == ',' || *w == '\\')
			n[old++] = '\\';
		n[old++] = *w;
	}
	n[old] = 0;
	o->fuse_opts = n;
	return 0;
}

static int parse_number(const char *v, double min, double max, double *out)
{
	char *end;
	double d = strtod(v, &end);

	if (!*v || *end || d < min || d > max)
		return -EINVAL;
	*out = d;
	return 0;
}

static int set_str(char **field, const char *v)
{
	free(*field);
	*field = strdup(v);
	return *field ? 0 : -ENOMEM;
}

/* --- our own keys: v is what follows the template (all of the word for flags) --- */

static int opt_create(struct vds_opts *o, const char *v, char *err, size_t len)
{
	if (!strcmp(v, "mfs"))
		o->create = VDS_CREATE_MFS;
	else if (!strcmp(v, "ff"))
		o->create = VDS_CREATE_FF;
	else if (vds_ds_name_ok(v, strlen(v))) {
		o->create = VDS_CREATE_NAMED;
		strcpy(o->create_name, v);
	} else
		return vds_err(err, len, -EINVAL, "create=%s: expected mfs, ff or a datastore name", v);
	return 0;
}

static int opt_control(struct vds_opts *o, const char *v, char *err, size_t len)
{
	if (v[0] != '/')
		return vds_err(err, len, -EINVAL, "control=%s: the socket path must be absolute", v);
	return set_str(&o->control, v);
}

static int opt_control_group(struct vds_opts *o, const char *v, char *err, size_t len)
{
	if (!v[0])
		return vds_err(err, len, -EINVAL, "control_group=: expected a group name or id");
	return set_str(&o->control_group, v);
}

static int opt_threads(struct vds_opts *o, const char *v, char *err, size_t len)
{
	double d;

	if (parse_number(v, 1, 256, &d) || d != (unsigned)d)
		return vds_err(err, len, -EINVAL, "threads=%s: expected a whole number 1-256", v);
	o->threads = (unsigned)d;
	return 0;
}

static int opt_timeout(struct vds_opts *o, const char *v, char *err, size_t len)
{
	if (parse_number(v, 0, 86400, &o->timeout))
		return vds_err(err, len, -EINVAL, "timeout=%s: expected seconds, 0-86400", v);
	return 0;
}

static int opt_io_uring(struct vds_opts *o, const char *v, char *err, size_t len)
{
	static const char *const names[] = { [VDS_IO_URING_AUTO] = "auto",
		[VDS_IO_URING_ON] = "on", [VDS_IO_URING_OFF] = "off" };

	for (int i = 0; i < 3; i++)
		if (!strcmp(v, names[i])) {
			o->io_uring = (enum vds_io_uring)i;
			return 0;
		}
	return vds_err(err, len, -EINVAL, "io_uring=%s: expected auto, on or off", v);
}

static int opt_async_io(struct vds_opts *o, const char *v, char *err, size_t len)
{
	if (strcmp(v, "on") && strcmp(v, "off"))
		return vds_err(err, len, -EINVAL, "async_io=%s: expected async_io=on or async_io=off", v);
	o->sync_io = !strcmp(v, "off");
	return 0;
}

static int opt_resume(struct vds_opts *o, const char *v, char *err, size_t len)
{
	if (strcmp(v, "on") && strcmp(v, "off"))
		return vds_err(err, len, -EINVAL, "resume=%s: expected on or off", v);
	o->no_resume = !strcmp(v, "off");
	return 0;
}

static int opt_oom_score_adj(struct vds_opts *o, const char *v, char *err, size_t len)
{
	double d;

	if (parse_number(v, -1000, 1000, &d) || d != (int)d)
		return vds_err(err, len, -EINVAL, "oom_score_adj=%s: expected a whole number -1000-1000", v);
	o->oom_score_adj = (int)d;
	o->oom_set = true;
	return 0;
}

static int opt_metrics(struct vds_opts *o, const char *v, char *err, size_t len)
{
	if (v[0] != '/')
		return vds_err(err, len, -EINVAL, "metrics=%s: the file path must be absolute", v);
	return set_str(&o->metrics, v);
}

static int opt_metrics_interval(struct vds_opts *o, const char *v, char *err, size_t len)
{
	if (parse_number(v, 0.1, 3600, &o->metrics_interval))
		return vds_err(err, len, -EINVAL, "metrics_interval=%s: expected seconds, 0.1-3600", v);
	return 0;
}

static int flag_foreground(struct vds_opts *o, const char *v, char *err, size_t len)
{
	(void)v, (void)err, (void)len;
	o->foreground = true;
	return 0;
}

/* -d is debug in the foreground; -o debug only the debug output. */
static int flag_debug(struct vds_opts *o, const char *v, char *err, size_t len)
{
	(void)err, (void)len;
	o->debug = true;
	if (v[0] == '-')
		o->foreground = true;
	return 0;
}

static int flag_help(struct vds_opts *o, const char *v, char *err, size_t len)
{
	(void)v, (void)err, (void)len;
	o->help = true;
	return 0;
}

static int flag_version(struct vds_opts *o, const char *v, char *err, size_t len)
{
	(void)v, (void)err, (void)len;
	o->version = true;
	return 0;
}

/* One row per key: a template as fuse_opt_parse() matches it ("key=" takes any
 * value, "-x" is a flag of the command line, a bare word an -o word), and the
 * function that checks and stores it. */
static const struct own_opt {
	const char *templ;
	int (*fn)(struct vds_opts *o, const char *v, char *err, size_t len);
} own[] = {
	{ "create=", opt_create },
	{ "control=", opt_control },
	{ "control_group=", opt_control_group },
	{ "threads=", opt_threads },
	{ "timeout=", opt_timeout },
	{ "io_uring=", opt_io_uring },
	{ "async_io=", opt_async_io },
	{ "resume=", opt_resume },
	{ "oom_score_adj=", opt_oom_score_adj },
	{ "metrics=", opt_metrics },
	{ "metrics_interval=", opt_metrics_interval },
	{ "debug", flag_debug },
	{ "-f", flag_foreground },
	{ "-d", flag_debug },
	{ "-h", flag_help },
	{ "--help", flag_help },
	{ "-V", flag_version },
	{ "--version", flag_version },
};
#define NOWN	(sizeof(own) / sizeof(own[0]))

/* fuse_opt_parse()'s callback: 0 (the word is used up, libfuse keeps nothing) or -1
 * with the reason in ctx->err. */
static int parse_one(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct parse_ctx *c = data;
	const char *eq;
	int ret;

	(void)outargs;
	if (key == FUSE_OPT_KEY_NONOPT) {
		c->pos[c->npos++] = (char *)arg;
		return 0;
	}
	if (key >= 0 && (size_t)key < NOWN) {
		eq = strchr(own[key].templ, '=');
		ret = own[key].fn(c->o, eq ? arg + (eq - own[key].templ) + 1 : arg, c->err, c->len);
	} else if (arg[0] == '-') {
		ret = vds_err(c->err, c->len, -EINVAL, "unknown option '%s' (see --help)", arg);
	} else {
		ret = fstab_only(arg) ? 0 : append_fuse_opt(c->o, arg);
	}
	if (ret == -ENOMEM && !c->err[0])
		vds_err(c->err, c->len, ret, "out of memory");
	c->ret = ret;
	return ret ? -1 : 0;
}

/* Every positional argument but the last names datastores, joined by ':' or not;
 * the last is the mountpoint. A lone one is taken for datastores that lack it. */
static int parse_positionals(struct vds_opts *o, char **pos, int npos, char *err, size_t len)
{
	int ret = 0;

	if (npos == 0)
		return vds_err(err, len, -EINVAL, "no datastores given (expected NAME=PATH[:NAME=PATH...] MOUNTPOINT)");
	if (npos == 1)
		return vds_err(err, len, -EINVAL, "no mountpoint given");
	for (int i = 0; i < npos - 1 && !ret; i++)
		ret = vds_ds_parse(o->ds, &o->nds, pos[i], err, len);
	if (!ret && !(o->mountpoint = strdup(pos[npos - 1])))
		ret = -ENOMEM;
	return ret;
}

/* argv through fuse_opt_parse(), with ctx collecting. libfuse reports a -o without
 * its list itself (on stderr, as it parses); ours is the one line instead. */
static int walk_argv(struct parse_ctx *c, int argc, char **argv)
{
	struct fuse_opt templ[NOWN + 1];
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	int ret;

	if (argc > 1 && !strcmp(argv[argc - 1], "-o"))
		return vds_err(c->err, c->len, -EINVAL, "-o needs an argument");
	for (size_t i = 0; i < NOWN; i++)
		templ[i] = (struct fuse_opt)FUSE_OPT_KEY(own[i].templ, (int)i);
	templ[NOWN] = (struct fuse_opt)FUSE_OPT_END;
	ret = fuse_opt_parse(&args, c, templ, parse_one);
	fuse_opt_free_args(&args);
	if (ret && !c->ret)	/* libfuse's own failure: out of memory */
		return vds_err(c->err, c->len, -ENOMEM, "out of memory");
	return ret ? c->ret : 0;
}

int opts_parse(struct vds_opts *o, int argc, char **argv, char *err, size_t len)
{
	struct parse_ctx c = { .o = o, .err = err, .len = len };
	int ret;

	memset(o, 0, sizeof(*o));
	o->threads = DEFAULT_THREADS;
	o->timeout = DEFAULT_TIMEOUT;
	o->metrics_interval = DEFAULT_METRICS_INTERVAL;
	o->fuse_opts = calloc(1, 1);
	c.pos = calloc((size_t)argc + 1, sizeof(*c.pos));
	if (!o->fuse_opts || !c.pos) {
		free(c.pos);
		return -ENOMEM;
	}
	if (len)
		err[0] = 0;
	ret = walk_argv(&c, argc, argv);
	if (!ret && !o->help && !o->version)
		ret = parse_positionals(o, c.pos, c.npos, err, len);
	free(c.pos);
	if (ret || o->help || o->version)
		return ret;
	if (o->create == VDS_CREATE_NAMED) {
		for (int i = 0; i < o->nds; i++)
			if (!strcmp(o->ds[i].name, o->create_name))
				return 0;
		return vds_err(err, len, -EINVAL, "create=%s names no datastore", o->create_name);
	}
	return 0;
}

void opts_free(struct vds_opts *o)
{
	vds_ds_free(o->ds, o->nds);
	free(o->mountpoint);
	free(o->control);
	free(o->control_group);
	free(o->metrics);
	free(o->fuse_opts);
	memset(o, 0, sizeof(*o));
}

void opts_usage(const char *argv0)
{
	printf("usage: %s [options] NAME=PATH[:NAME=PATH...]... MOUNTPOINT\n"
	       "\n"
	       "Mounts several datastore directories as one namespace. Datastores may be\n"
	       "joined by ':' in one argument or given as separate arguments.\n"
	       "\n"
	       "  -f                 stay in the foreground\n"
	       "  -d                 debug output (implies -f)\n"
	       "  -o OPT[,OPT...]    mount options:\n"
	       "     create=mfs|ff|NAME  where new files go: most free space (default),\n"
	       "                         first datastore, or the named one\n"
	       "     control=PATH        control socket (default /run/vdsfs/<mountpoint as\n"
	       "                         systemd-escape --path writes it>.sock)\n"
	       "     control_group=GROUP also let this group use the control socket\n"
	       "                         (default: root and the daemon's user only)\n"
	       "     threads=N           FUSE worker threads (default %d)\n"
	       "     io_uring=auto|on|off  FUSE over io_uring when the kernel offers it\n"
	       "                         (auto, the default), required (on), or never:\n"
	       "                         /dev/fuse only (off)\n"
	       "     async_io=on|off     backing reads and writes through io_uring, answered\n"
	       "                         (on, the default) on completion, or done by each\n"
	       "                         FUSE worker itself (off)\n"
	       "     timeout=SECONDS     kernel entry/attribute cache time (default %g)\n"
	       "     resume=on|off       after a crash or an unmount, go on with a migration\n"
	       "                         that was copying or converging (on, the default),\n"
	       "                         or roll it back (off)\n"
	       "     oom_score_adj=N     the daemon's OOM score adjustment, -1000..1000\n"
	       "                         (default: -1000 when run as root, else unchanged)\n"
	       "     metrics=PATH        keep a Prometheus text file at PATH, rewritten\n"
	       "                         every metrics_interval and at exit\n"
	       "     metrics_interval=SECONDS  between rewrites of metrics= (default %g)\n"
	       "     allow_other, default_permissions, ro, fsname=..., and the other\n"
	       "     FUSE mount options (see mount.fuse3(8))\n"
	       "  -h, --help         this text\n"
	       "  -V, --version      version\n", argv0, DEFAULT_THREADS, DEFAULT_TIMEOUT,
	       DEFAULT_METRICS_INTERVAL);
}
