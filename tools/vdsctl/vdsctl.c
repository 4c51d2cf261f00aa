/* vdsctl - control a running vdsfs: datastores, where, migrate, status, cancel.
 *
 * Talks JSON lines over the daemon's Unix socket (fs/control/control_req.c has the
 * protocol). Paths the user types are turned here into paths relative to the
 * mount root by one rule (paths.h): a path outside the mount, or one that names
 * nothing, is refused before anything is sent.
 * Exit status: 0 success, 1 the daemon refused or a migration did not switch,
 * 2 usage error or no daemon.
 */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control_path.h"
#include "paths.h"
#include "size.h"

struct ctl {
	char mount[PATH_MAX];	/* canonical mountpoint, "" if only -s given */
	char *typed;		/* -m as typed if it reaches the mount another way, or NULL */
	char *cwd;		/* the current directory, NULL if getcwd failed */
	char sock[108];
	int fd;
	FILE *in;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vdsctl (-m MOUNTPOINT | -s SOCKET) COMMAND [ARGS]\n"
		"       vdsctl (-h | --help | -V | --version)\n"
		"\n"
		"  -m, --mount MOUNTPOINT  the vdsfs mount to control (its default socket\n"
		"                          unless -s names another)\n"
		"  -s, --socket SOCKET     the control socket (vdsfs -o control=PATH)\n"
		"  -h, --help              this text\n"
		"  -V, --version           the version\n"
		"\n"
		"commands:\n"
		"  datastores [--json | --names]       datastores, space, bytes held, migrations;\n"
		"                                      --names: only the names, one per line\n"
		"  where [--json] PATH...              the datastore of each file, its migration\n"
		"  migrate [--wait] [--parallel N] [--bwlimit RATE] [--space-margin SIZE]\n"
		"          [--no-space-check] PATH... --to NAME\n"
		"                                      --parallel: migrations the daemon runs at\n"
		"                                      once from now on (default 4); --bwlimit:\n"
		"                                      copy rate of each of these files;\n"
		"                                      --space-margin: free space the destination\n"
		"                                      must keep beyond the daemon's estimate;\n"
		"                                      --no-space-check: skip that check\n"
		"  migrate [--wait] ... PATH=NAME...   per-file destinations; a directory means\n"
		"                                      every file under it\n"
		"  status [--json] [--watch] [ID]      phase, progress, rate, ETA, diff size, pause\n"
		"  cancel ID                           roll a migration back; the source stays\n"
		"  events                              the scheduler's event log (JSON)\n"
		"\n"
		"PATH: relative to the current directory when that is inside the mount, else\n"
		"to the mount root (vm1/disk1.raw works from anywhere outside); an absolute\n"
		"PATH must lie inside the mount. With -s and no -m every PATH is taken from\n"
		"the mount root. In PATH=NAME the last '=' splits. \".\" and \"..\" are folded\n"
		"as the shell's cd does; the daemon resolves symlinks beneath each datastore.\n"
		"RATE is bytes/s, SIZE bytes:\n"
		"  " VDS_SIZE_SYNTAX ".\n"
		"Without -s the socket is /run/vdsfs/<mountpoint as systemd-escape --path\n"
		"writes it>.sock, as vdsfs makes it by default (/run/vdsfs/var-lib-vdsfs.sock\n"
		"for /var/lib/vdsfs).\n");
}

static int die(int code, const char *fmt, const char *arg)
{
	fprintf(stderr, "vdsctl: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return code;
}

static int ctl_connect(struct ctl *c)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", c->sock);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return -errno;
	c->in = fdopen(c->fd, "r");
	return c->in ? 0 : -errno;
}

/* One request, one reply; NULL (with a message printed) if the daemon is gone. */
static json_object *call(struct ctl *c, json_object *req)
{
	const char *s = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	char *line = NULL;
	size_t cap = 0;
	json_object *rep;

	if (write(c->fd, s, strlen(s)) < 0 || write(c->fd, "\n", 1) < 0 ||
	    getline(&line, &cap, c->in) <= 0) {
		free(line);
		fprintf(stderr, "vdsctl: the daemon closed the connection\n");
		return NULL;
	}
	rep = json_tokener_parse(line);
	free(line);
	if (!rep)
		fprintf(stderr, "vdsctl: unreadable reply from the daemon\n");
	return rep;
}

static bool reply_ok(json_object *rep)
{
	json_object *ok, *err;

	if (json_object_object_get_ex(rep, "ok", &ok) && json_object_get_boolean(ok))
		return true;
	if (json_object_object_get_ex(rep, "error", &err))
		fprintf(stderr, "vdsctl: %s\n", json_object_get_string(err));
	return false;
}

static bool reply_ok_quiet(json_object *rep)
{
	json_object *ok;

	return json_object_object_get_ex(rep, "ok", &ok) && json_object_get_boolean(ok);
}

static json_object *simple(struct ctl *c, const char *cmd)
{
	json_object *req = json_object_new_object(), *rep;

	json_object_object_add(req, "cmd", json_object_new_string(cmd));
	rep = call(c, req);
	json_object_put(req);
	return rep;
}

/* A path as typed -> path relative to the mount root (paths.h has the rule), or -1
 * with the message printed. With the mount known, a path that names nothing is
 * refused here, with a clearer word than the daemon's errno; whether it may be
 * acted on (symlinks, datastores) stays the daemon's decision. */
static int relpath(struct ctl *c, const char *arg, char *out, size_t len)
{
	struct mount_view mv = { .root = c->mount[0] ? c->mount : NULL, .typed = c->typed,
				 .cwd = c->cwd };
	char err[PATH_MAX + 256], *full;
	struct stat st;
	int ret = mount_relpath(&mv, arg, out, len, err, sizeof(err));

	if (ret) {
		fprintf(stderr, "vdsctl: %s\n", err);
		return -1;
	}
	if (!mv.root)
		return 0;
	if (asprintf(&full, "%s/%s", mv.root, out) < 0) {
		fprintf(stderr, "vdsctl: out of memory\n");
		return -1;
	}
	ret = lstat(full, &st) < 0 && (errno == ENOENT || errno == ENOTDIR) ? -1 : 0;
	free(full);
	if (ret)
		fprintf(stderr, "vdsctl: %s: no such file in the mount\n", arg);
	return ret;
}

static const char *human(double b, char *buf, size_t len)
{
	const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int i = 0;

	while (b >= 1024 && i < 4)
		b /= 1024, i++;
	snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", b, u[i]);
	return buf;
}

static int64_t geti(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

static double getd(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : 0;
}

static const char *gets_(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : "";
}

/* Error exits free what they hold: the tests run this tool under LeakSanitizer. */
static int put_fail(json_object *o)
{
	json_object_put(o);
	return 1;
}

/* Failed replies exit 1; with --json a good one is printed as it came. */
static int finish_reply(json_object *rep, bool print)
{
	bool ok = rep && reply_ok_quiet(rep);

	if (ok && print)
		puts(json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PRETTY));
	json_object_put(rep);
	return ok ? 0 : 1;
}

/* --names prints one name a line and nothing else: what shell completion reads. */
static int cmd_datastores(struct ctl *c, int argc, char **argv)
{
	json_object *rep, *arr;
	char a[32], b[32], h[32];
	bool json = false, names = false;

	for (int i = 0; i < argc; i++)
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--names"))
			names = true;
		else
			return die(2, "datastores: unknown argument '%s'", argv[i]);
	if (json && names)
		return die(2, "datastores: --json or --names, not both%s", "");
	rep = simple(c, "datastores");
	if (!rep || !reply_ok(rep) || json)
		return finish_reply(rep, json);
	json_object_object_get_ex(rep, "datastores", &arr);
	for (size_t i = 0; names && i < json_object_array_length(arr); i++)
		puts(gets_(json_object_array_get_idx(arr, i), "name"));
	if (names) {
		json_object_put(rep);
		return 0;
	}
	printf("%-12s %-8s %10s %10s %10s %5s  %s\n", "NAME", "FS", "SIZE", "FREE", "HELD", "MIGR", "PATH");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *d = json_object_array_get_idx(arr, i);

		printf("%-12s %-8s %10s %10s %10s %5lld  %s\n", gets_(d, "name"), gets_(d, "fs"),
		       human(geti(d, "size"), a, sizeof(a)), human(geti(d, "free"), b, sizeof(b)),
		       human(geti(d, "held"), h, sizeof(h)), (long long)geti(d, "migrations"),
		       gets_(d, "path"));
	}
	json_object_put(rep);
	return 0;
}

static int cmd_where(struct ctl *c, int argc, char **argv, bool json)
{
	json_object *req = json_object_new_object(), *paths = json_object_new_array(), *rep, *arr;
	char rel[PATH_MAX];
	int ret = 0;

	json_object_object_add(req, "cmd", json_object_new_string("where"));
	json_object_object_add(req, "paths", paths);
	if (!argc) {
		json_object_put(req);
		return die(2, "where: which paths?%s", "");
	}
	for (int i = 0; i < argc; i++) {
		if (relpath(c, argv[i], rel, sizeof(rel)))
			return put_fail(req);
		json_object_array_add(paths, json_object_new_string(rel));
	}
	rep = call(c, req);
	json_object_put(req);
	if (!rep || !reply_ok(rep) || json)
		return finish_reply(rep, json);
	json_object_object_get_ex(rep, "where", &arr);
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *e = json_object_array_get_idx(arr, i);

		if (*gets_(e, "error")) {
			fprintf(stderr, "vdsctl: %s: %s\n", gets_(e, "path"), gets_(e, "error"));
			ret = 1;
		} else if (geti(e, "migration"))
			printf("%s\t%s\tmigration %lld\n", gets_(e, "path"), gets_(e, "datastore"),
			       (long long)geti(e, "migration"));
		else
			printf("%s\t%s\n", gets_(e, "path"), gets_(e, "datastore"));
	}
	json_object_put(rep);
	return ret;
}

static bool terminal_phase(const char *p)
{
	return !strcmp(p, "done") || !strcmp(p, "failed") || !strcmp(p, "cancelled");
}

static void print_bar(json_object *m, bool tty)
{
	double done = geti(m, "bytes_copied"), total = geti(m, "bytes_total");
	double pct = total > 0 ? 100.0 * done / total : 0;
	const char *phase = gets_(m, "phase");
	char bar[31], r[32];
	int fill = (int)(pct * 30 / 100);

	if (!strcmp(phase, "done"))
		pct = 100, fill = 30;
	for (int i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = 0;
	printf("%4lld %-28.28s %-11s [%s] %5.1f%% %10s/s pause %.1f ms%s%s%s\n",
	       (long long)geti(m, "id"), gets_(m, "path"), phase, bar, pct,
	       human(getd(m, "rate"), r, sizeof(r)), getd(m, "pause_ms"),
	       *gets_(m, "error") ? "  " : "", gets_(m, "error"), tty ? "\033[K" : "");
}

static json_object *status_of(struct ctl *c, uint64_t id)
{
	json_object *req = json_object_new_object(), *rep, *arr;

	json_object_object_add(req, "cmd", json_object_new_string("status"));
	if (id)
		json_object_object_add(req, "id", json_object_new_int64((int64_t)id));
	rep = call(c, req);
	json_object_put(req);
	if (!rep || !reply_ok(rep)) {
		json_object_put(rep);
		return NULL;
	}
	json_object_object_get_ex(rep, "migrations", &arr);
	json_object_get(arr);
	json_object_put(rep);
	return arr;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Progress per id until all are over. Plain lines on a pipe (one per phase change),
 * bars redrawn in place on a terminal. Returns 0 only if every one switched. */
static int wait_for(struct ctl *c, json_object *ids)
{
	size_t n = json_object_array_length(ids);
	bool tty = isatty(STDOUT_FILENO);
	char **last = calloc(n, sizeof(char *));
	int ret = 0;

	for (bool all = false; !all;) {
		all = true;
		for (size_t i = 0; i < n; i++) {
			json_object *arr = status_of(c, json_object_get_int64(json_object_array_get_idx(ids, i)));
			json_object *m = arr ? json_object_array_get_idx(arr, 0) : NULL;
			const char *phase = m ? gets_(m, "phase") : "failed";

			if (!terminal_phase(phase))
				all = false;
			if (m && (tty || !last[i] || strcmp(last[i], phase))) {
				print_bar(m, tty);
				free(last[i]);
				last[i] = strdup(phase);
			}
			json_object_put(arr);
		}
		fflush(stdout);
		if (!all) {
			sleep_ms(tty ? 250 : 100);
			if (tty)
				printf("\033[%zuA", n);
		}
	}
	for (size_t i = 0; i < n; i++) {
		ret |= strcmp(last[i] ? last[i] : "", "done") != 0;
		free(last[i]);
	}
	free(last);
	return ret;
}

struct migrate_args {
	const char *to;		/* --to NAME, for paths without =NAME */
	uint64_t bwlimit;	/* 0: not given */
	uint64_t space_margin;
	bool margin_given, no_space_check, wait;
	int parallel;		/* 0: not given */
};

/* migrate's options; the index of the first path, or -(exit status) after a message. */
static int migrate_opts(struct migrate_args *a, int argc, char **argv)
{
	static const struct option lo[] = { { "wait", 0, 0, 'w' }, { "parallel", 1, 0, 'p' },
		{ "bwlimit", 1, 0, 'b' }, { "to", 1, 0, 't' }, { "space-margin", 1, 0, 'm' },
		{ "no-space-check", 0, 0, 'n' }, { 0 } };
	char err[256];
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "+", lo, NULL)) != -1) {
		if (opt == 'w')
			a->wait = true;
		else if (opt == 'p' && (a->parallel = atoi(optarg)) < 1)
			return -die(2, "--parallel %s: expected a number >= 1", optarg);
		else if (opt == 'b' &&
			 vds_size_parse("--bwlimit", optarg, INT64_MAX, &a->bwlimit, err, sizeof(err)))
			return -die(2, "%s", err);
		else if (opt == 'm' && vds_size_parse("--space-margin", optarg, INT64_MAX,
						      &a->space_margin, err, sizeof(err)))
			return -die(2, "%s", err);
		else if (opt == 'm')
			a->margin_given = true;
		else if (opt == 'n')
			a->no_space_check = true;
		else if (opt == 't')
			a->to = optarg;
		else if (opt == '?')
			return -2;
	}
	return optind;
}

/* The "moves" of the request, or NULL with *code set and the message printed. */
static json_object *migrate_moves(struct ctl *c, int argc, char **argv, const char *to, int *code)
{
	json_object *moves = json_object_new_array();
	char rel[PATH_MAX];

	for (int i = 0; i < argc; i++) {
		char *eq = strrchr(argv[i], '=');	/* names have no '=', paths may */
		const char *dest = eq ? eq + 1 : to;
		json_object *mv;

		if (eq)
			*eq = 0;
		if (!dest || !*dest)
			*code = die(2, "migrate: no destination for %s (use --to NAME or PATH=NAME)", argv[i]);
		else if (relpath(c, argv[i], rel, sizeof(rel)))
			*code = 1;
		if (*code) {
			json_object_put(moves);
			return NULL;
		}
		mv = json_object_new_object();
		json_object_object_add(mv, "path", json_object_new_string(rel));
		json_object_object_add(mv, "to", json_object_new_string(dest));
		json_object_array_add(moves, mv);
	}
	return moves;
}

static int cmd_migrate(struct ctl *c, int argc, char **argv)
{
	struct migrate_args a = { 0 };
	json_object *req, *moves, *rep, *ids;
	int first = migrate_opts(&a, argc, argv), ret = 0;

	if (first < 0)
		return -first;
	/* --to may also follow the paths */
	for (int i = first; i < argc; i++)
		if (!strcmp(argv[i], "--to") && i + 1 < argc) {
			a.to = argv[i + 1];
			memmove(&argv[i], &argv[i + 2], (argc - i - 2) * sizeof(char *));
			argc -= 2;
			i--;
		}
	if (first == argc)
		return die(2, "migrate: which paths?%s", "");
	moves = migrate_moves(c, argc - first, argv + first, a.to, &ret);
	if (!moves)
		return ret;
	req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string("migrate"));
	json_object_object_add(req, "moves", moves);
	if (a.bwlimit)
		json_object_object_add(req, "bwlimit", json_object_new_int64((int64_t)a.bwlimit));
	if (a.parallel)
		json_object_object_add(req, "parallel", json_object_new_int(a.parallel));
	/* The daemon's room check: omitted keys leave its defaults. */
	if (a.margin_given)
		json_object_object_add(req, "space_margin", json_object_new_int64((int64_t)a.space_margin));
	if (a.no_space_check)
		json_object_object_add(req, "space_check", json_object_new_boolean(0));
	rep = call(c, req);
	json_object_put(req);
	if (!rep || !reply_ok(rep))
		return put_fail(rep);
	json_object_object_get_ex(rep, "ids", &ids);
	for (size_t i = 0; i < json_object_array_length(ids); i++)
		printf("%lld\n", (long long)json_object_get_int64(json_object_array_get_idx(ids, i)));
	fflush(stdout);
	ret = a.wait ? wait_for(c, ids) : 0;
	json_object_put(rep);
	return ret;
}

static int cmd_status(struct ctl *c, int argc, char **argv)
{
	bool json = false, watch = false;
	uint64_t id = 0;

	for (int i = 0; i < argc; i++)
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--watch"))
			watch = true;
		else if ((id = strtoull(argv[i], NULL, 10)) == 0)
			return die(2, "status: bad migration id '%s'", argv[i]);
	for (;;) {
		json_object *arr = status_of(c, id);
		bool active = false;

		if (!arr)
			return 1;
		if (watch && isatty(STDOUT_FILENO))
			printf("\033[H\033[2J");
		if (json)
			puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY));
		for (size_t i = 0; !json && i < json_object_array_length(arr); i++) {
			json_object *m = json_object_array_get_idx(arr, i);

			print_bar(m, false);
			active |= !terminal_phase(gets_(m, "phase"));
		}
		for (size_t i = 0; json && i < json_object_array_length(arr); i++)
			active |= !terminal_phase(gets_(json_object_array_get_idx(arr, i), "phase"));
		json_object_put(arr);
		fflush(stdout);
		if (!watch || !active)
			return 0;
		sleep_ms(500);
	}
}

static int cmd_cancel(struct ctl *c, int argc, char **argv)
{
	json_object *req, *rep;
	uint64_t id;

	if (argc != 1 || !(id = strtoull(argv[0], NULL, 10)))
		return die(2, "cancel: expected one migration id%s", "");
	req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string("cancel"));
	json_object_object_add(req, "id", json_object_new_int64((int64_t)id));
	rep = call(c, req);
	json_object_put(req);
	if (!rep || !reply_ok(rep))
		return put_fail(rep);
	json_object_put(rep);
	return 0;
}

/* -m: the canonical mountpoint, -m as typed when it reaches the mount by another
 * way (a symlink on the way), and the default socket unless -s named one. */
static int mount_setup(struct ctl *c, const char *mnt)
{
	char *real = realpath(mnt, NULL), *abs = NULL, typed[PATH_MAX];

	if (!real)
		return -errno;
	snprintf(c->mount, sizeof(c->mount), "%s", real);
	free(real);
	if (mnt[0] == '/')
		abs = strdup(mnt);
	else if (c->cwd && asprintf(&abs, "%s/%s", c->cwd, mnt) < 0)
		abs = NULL;
	if (abs && !path_fold(abs, typed, sizeof(typed)) && strcmp(typed, c->mount) &&
	    (real = realpath(typed, NULL))) {
		if (!strcmp(real, c->mount))
			c->typed = strdup(typed);
		free(real);
	}
	free(abs);
	if (c->sock[0])
		return 0;
	return control_default_path(c->mount, c->sock, sizeof(c->sock));
}

static int run_command(struct ctl *c, const char *cmd, int argc, char **argv)
{
	bool json = argc && !strcmp(argv[0], "--json");
	json_object *rep;
	int ret;

	if (!strcmp(cmd, "datastores"))
		return cmd_datastores(c, argc, argv);
	if (!strcmp(cmd, "where"))
		return cmd_where(c, argc - json, argv + json, json);
	if (!strcmp(cmd, "migrate"))
		return cmd_migrate(c, argc + 1, argv - 1);
	if (!strcmp(cmd, "status"))
		return cmd_status(c, argc, argv);
	if (!strcmp(cmd, "cancel"))
		return cmd_cancel(c, argc, argv);
	if (strcmp(cmd, "events"))
		return die(2, "unknown command '%s' (see --help)", cmd);
	rep = simple(c, "events");
	ret = rep && reply_ok(rep) ? 0 : 1;
	if (!ret)
		puts(json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PRETTY));
	json_object_put(rep);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = { { "mount", 1, 0, 'm' }, { "socket", 1, 0, 's' },
		{ "help", 0, 0, 'h' }, { "version", 0, 0, 'V' }, { 0 } };
	struct ctl c = { .fd = -1 };
	const char *mnt = NULL;
	int opt, ret;

	/* "+": the options end at the command, whose own options come after it. A bad
	 * or incomplete option gets the usage on stderr, as a missing command does. */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+m:s:hV", lo, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return 0;
		} else if (opt == 'V') {
			printf("vdsctl %s\n", VDS_VERSION);
			return 0;
		} else if (opt == 'm')
			mnt = optarg;
		else if (opt == 's')
			snprintf(c.sock, sizeof(c.sock), "%s", optarg);
		else {
			usage(stderr);
			return 2;
		}
	}
	opterr = 1;	/* migrate's own options say what is wrong with them */
	if (optind == argc || (!mnt && !c.sock[0])) {
		usage(stderr);
		return 2;
	}
	c.cwd = getcwd(NULL, 0);	/* NULL is handled where a path needs it */
	ret = mnt ? mount_setup(&c, mnt) : 0;
	if (ret == -ENAMETOOLONG)
		ret = die(2, "mountpoint %s is too long for the default socket name; use -s", mnt);
	else if (ret)
		ret = die(2, "mountpoint %s does not exist", mnt);
	else if (ctl_connect(&c))
		ret = die(2, "cannot reach vdsfs at %s (is it mounted? -s for a custom socket)", c.sock);
	else
		ret = run_command(&c, argv[optind], argc - optind - 1, argv + optind + 1);
	if (c.in)
		fclose(c.in);
	free(c.cwd);
	free(c.typed);
	return ret;
}
