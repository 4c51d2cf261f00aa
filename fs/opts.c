/* opts.c - parse `vdsfs [options] NAME=PATH[:NAME=PATH...]... MOUNTPOINT`.
 *
 * mount.fuse3 calls us as `vdsfs SOURCE MOUNTPOINT -o OPTS`, so options may come
 * before or after the positional arguments. Our own -o keys are consumed here; fstab
 * bookkeeping words (defaults, nofail, _netdev, x-*, ...) are dropped because they
 * mean nothing to a running filesystem; every other -o word goes to libfuse, which
 * refuses what it does not know. Errors are written to err as one line and returned
 * as -EINVAL: the caller prints them and exits 1 before anything is mounted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "opts.h"

#define DEFAULT_THREADS	12
#define DEFAULT_TIMEOUT	60.0

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

static int append_fuse_opt(struct vds_opts *o, const char *w)
{
	size_t old = strlen(o->fuse_opts), add = strlen(w);
	char *n = realloc(o->fuse_opts, old + add + 2);

	if (!n)
		return -ENOMEM;
	if (old)
		n[old++] = ',';
	memcpy(n + old, w, add + 1);
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

static int parse_create(struct vds_opts *o, const char *v, char *err, size_t len)
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

static int parse_o_word(struct vds_opts *o, const char *w, char *err, size_t len)
{
	double d;

	if (!strncmp(w, "create=", 7))
		return parse_create(o, w + 7, err, len);
	if (!strncmp(w, "control=", 8)) {
		if (w[8] != '/')
			return vds_err(err, len, -EINVAL, "control=%s: the socket path must be absolute", w + 8);
		free(o->control);
		o->control = strdup(w + 8);
		return 0;
	}
	if (!strncmp(w, "control_group=", 14)) {
		if (!w[14])
			return vds_err(err, len, -EINVAL, "control_group=: expected a group name or id");
		free(o->control_group);
		o->control_group = strdup(w + 14);
		return 0;
	}
	if (!strncmp(w, "threads=", 8)) {
		if (parse_number(w + 8, 1, 256, &d) || d != (unsigned)d)
			return vds_err(err, len, -EINVAL, "threads=%s: expected a whole number 1-256", w + 8);
		o->threads = (unsigned)d;
		return 0;
	}
	if (!strncmp(w, "io_uring=", 9)) {
		static const char *const names[] = { [VDS_IO_URING_AUTO] = "auto",
			[VDS_IO_URING_ON] = "on", [VDS_IO_URING_OFF] = "off" };

		for (int i = 0; i < 3; i++)
			if (!strcmp(w + 9, names[i])) {
				o->io_uring = (enum vds_io_uring)i;
				return 0;
			}
		return vds_err(err, len, -EINVAL, "io_uring=%s: expected auto, on or off", w + 9);
	}
	if (!strcmp(w, "async_io=on") || !strcmp(w, "async_io=off")) {
		o->sync_io = !strcmp(w, "async_io=off");
		return 0;
	}
	if (!strncmp(w, "async_io=", 9))
		return vds_err(err, len, -EINVAL, "%s: expected async_io=on or async_io=off", w);
	if (!strncmp(w, "timeout=", 8)) {
		if (parse_number(w + 8, 0, 86400, &d))
			return vds_err(err, len, -EINVAL, "timeout=%s: expected seconds, 0-86400", w + 8);
		o->timeout = d;
		return 0;
	}
	if (!strncmp(w, "resume=", 7)) {
		if (strcmp(w + 7, "on") && strcmp(w + 7, "off"))
			return vds_err(err, len, -EINVAL, "resume=%s: expected on or off", w + 7);
		o->no_resume = !strcmp(w + 7, "off");
		return 0;
	}
	if (!strcmp(w, "debug")) {
		o->debug = true;
		return 0;
	}
	if (fstab_only(w))
		return 0;
	return append_fuse_opt(o, w);
}

static int parse_o_list(struct vds_opts *o, const char *list, char *err, size_t len)
{
	char *copy = strdup(list), *save = NULL, *w;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	for (w = strtok_r(copy, ",", &save); w && !ret; w = strtok_r(NULL, ",", &save))
		ret = parse_o_word(o, w, err, len);
	free(copy);
	return ret;
}

static int parse_flag(struct vds_opts *o, int argc, char **argv, int *i, char *err, size_t len)
{
	const char *a = argv[*i];

	if (!strcmp(a, "-f"))
		o->foreground = true;
	else if (!strcmp(a, "-d"))
		o->debug = o->foreground = true;
	else if (!strcmp(a, "-h") || !strcmp(a, "--help"))
		o->help = true;
	else if (!strcmp(a, "-V") || !strcmp(a, "--version"))
		o->version = true;
	else if (!strcmp(a, "-o")) {
		if (++*i == argc)
			return vds_err(err, len, -EINVAL, "-o needs an argument");
		return parse_o_list(o, argv[*i], err, len);
	} else if (!strncmp(a, "-o", 2))
		return parse_o_list(o, a + 2, err, len);
	else
		return vds_err(err, len, -EINVAL, "unknown option '%s' (see --help)", a);
	return 0;
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

int opts_parse(struct vds_opts *o, int argc, char **argv, char *err, size_t len)
{
	char **pos = calloc((size_t)argc, sizeof(*pos));
	int npos = 0, ret = 0;

	memset(o, 0, sizeof(*o));
	o->threads = DEFAULT_THREADS;
	o->timeout = DEFAULT_TIMEOUT;
	o->fuse_opts = calloc(1, 1);
	if (!o->fuse_opts || !pos) {
		free(pos);
		return -ENOMEM;
	}
	for (int i = 1; i < argc && !ret; i++) {
		if (argv[i][0] == '-' && argv[i][1])
			ret = parse_flag(o, argc, argv, &i, err, len);
		else
			pos[npos++] = argv[i];
	}
	if (!ret && !o->help && !o->version)
		ret = parse_positionals(o, pos, npos, err, len);
	free(pos);
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
	       "     allow_other, default_permissions, ro, fsname=..., and the other\n"
	       "     FUSE mount options (see mount.fuse3(8))\n"
	       "  -h, --help         this text\n"
	       "  -V, --version      version\n", argv0, DEFAULT_THREADS, DEFAULT_TIMEOUT);
}
