/* vdsctl - control a running vdsfs: datastores, where, migrate, status, cancel,
 * datastore add|remove|maintenance, evacuate, rebalance.
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
#include <stdarg.h>
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
#include "proto.h"
#include "size.h"
#include "vdsctl.h"


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
		"  datastores [--json | --names | --spec]\n"
		"                                      datastores, space, bytes held, migrations,\n"
		"                                      mode; --names: only the names, one per\n"
		"                                      line; --spec: one NAME=PATH:... line for\n"
		"                                      fstab (runtime changes are not kept)\n"
		"  datastore add NAME=PATH             add a datastore to the mount, checked as\n"
		"                                      the mount checks its own\n"
		"  datastore remove NAME               retire an empty datastore\n"
		"  datastore maintenance NAME on|off   nothing new lands on it while on\n"
		"  evacuate NAME [--to NAME]... [--dry-run] [--wait] [--max-fill PCT] [--json]\n"
		"                                      move everything off NAME (put in\n"
		"                                      maintenance), onto the datastores with the\n"
		"                                      most room, none filled past PCT (90);\n"
		"                                      refused whole when it does not fit\n"
		"  evacuate NAME --cancel              cancel the migrations from or to NAME\n"
		"  rebalance [--threshold PCT] [--dry-run] [--wait] [--json]\n"
		"                                      move files off datastores fuller than PCT\n"
		"                                      (80) without filling another past it\n"
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
		"  metrics                             the daemon's metrics, Prometheus text\n"
		"                                      (the text of vdsfs's metrics= file)\n"
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

int die(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vdsctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
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
json_object *call(struct ctl *c, json_object *req)
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

bool reply_ok(json_object *rep)
{
	json_object *ok, *err;

	if (json_object_object_get_ex(rep, K_OK, &ok) && json_object_get_boolean(ok))
		return true;
	if (json_object_object_get_ex(rep, K_ERROR, &err))
		fprintf(stderr, "vdsctl: %s\n", json_object_get_string(err));
	return false;
}

bool reply_ok_quiet(json_object *rep)
{
	json_object *ok;

	return json_object_object_get_ex(rep, K_OK, &ok) && json_object_get_boolean(ok);
}

static json_object *simple(struct ctl *c, const char *cmd)
{
	json_object *req = json_object_new_object(), *rep;

	json_object_object_add(req, K_CMD, json_object_new_string(cmd));
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

const char *human(double b, char *buf, size_t len)
{
	const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int i = 0;

	while (b >= 1024 && i < 4)
		b /= 1024, i++;
	snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", b, u[i]);
	return buf;
}

int64_t geti(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

double getd(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : 0;
}

const char *gets_(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : "";
}

/* Error exits free what they hold: the tests run this tool under LeakSanitizer. */
int put_fail(json_object *o)
{
	json_object_put(o);
	return 1;
}

/* Failed replies exit 1; with --json a good one is printed as it came. */
int finish_reply(json_object *rep, bool print)
{
	bool ok = rep && reply_ok_quiet(rep);

	if (ok && print)
		puts(json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PRETTY));
	json_object_put(rep);
	return ok ? 0 : 1;
}

/* --names prints one name a line and nothing else: what shell completion reads.
 * --spec prints the datastores as one NAME=PATH:... line, what fstab and vdsfs take:
 * runtime changes are not kept by the daemon, so this is how they are kept. */
static int cmd_datastores(struct ctl *c, int argc, char **argv)
{
	json_object *rep, *arr;
	char a[32], b[32], h[32];
	bool json = false, names = false, spec = false;

	for (int i = 0; i < argc; i++)
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--names"))
			names = true;
		else if (!strcmp(argv[i], "--spec"))
			spec = true;
		else
			return die(2, "datastores: unknown argument '%s'", argv[i]);
	if (json + names + spec > 1)
		return die(2, "datastores: one of --json, --names, --spec");
	rep = simple(c, CMD_DATASTORES);
	if (!rep || !reply_ok(rep) || json)
		return finish_reply(rep, json);
	json_object_object_get_ex(rep, K_DATASTORES, &arr);
	for (size_t i = 0; names && i < json_object_array_length(arr); i++)
		puts(gets_(json_object_array_get_idx(arr, i), K_NAME));
	for (size_t i = 0; spec && i < json_object_array_length(arr); i++) {
		json_object *d = json_object_array_get_idx(arr, i);

		printf("%s%s=%s", i ? ":" : "", gets_(d, K_NAME), gets_(d, K_PATH));
	}
	if (names || spec) {
		if (spec)
			putchar('\n');
		json_object_put(rep);
		return 0;
	}
	printf("%-12s %-8s %10s %10s %10s %5s %-6s  %s\n", "NAME", "FS", "SIZE", "FREE", "HELD",
	       "MIGR", "MODE", "PATH");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *d = json_object_array_get_idx(arr, i), *mt;
		bool maint = json_object_object_get_ex(d, K_MAINTENANCE, &mt) &&
			     json_object_get_boolean(mt);

		printf("%-12s %-8s %10s %10s %10s %5lld %-6s  %s\n", gets_(d, K_NAME), gets_(d, K_FS),
		       human(geti(d, K_SIZE), a, sizeof(a)), human(geti(d, K_FREE), b, sizeof(b)),
		       human(geti(d, K_HELD), h, sizeof(h)), (long long)geti(d, K_MIGRATIONS),
		       maint ? "maint" : "normal", gets_(d, K_PATH));
	}
	json_object_put(rep);
	return 0;
}

static int cmd_where(struct ctl *c, int argc, char **argv, bool json)
{
	json_object *req = json_object_new_object(), *paths = json_object_new_array(), *rep, *arr;
	char rel[PATH_MAX];
	int ret = 0;

	json_object_object_add(req, K_CMD, json_object_new_string(CMD_WHERE));
	json_object_object_add(req, K_PATHS, paths);
	if (!argc) {
		json_object_put(req);
		return die(2, "where: which paths?");
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
	json_object_object_get_ex(rep, K_WHERE, &arr);
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *e = json_object_array_get_idx(arr, i);

		if (*gets_(e, K_ERROR)) {
			fprintf(stderr, "vdsctl: %s: %s\n", gets_(e, K_PATH), gets_(e, K_ERROR));
			ret = 1;
		} else if (geti(e, K_MIGRATION))
			printf("%s\t%s\tmigration %lld\n", gets_(e, K_PATH), gets_(e, K_DATASTORE),
			       (long long)geti(e, K_MIGRATION));
		else
			printf("%s\t%s\n", gets_(e, K_PATH), gets_(e, K_DATASTORE));
	}
	json_object_put(rep);
	return ret;
}

bool terminal_phase(const char *p)
{
	int phase = mig_phase_parse(p);

	return phase >= 0 && mig_phase_final(phase);
}

void print_bar(json_object *m, bool tty)
{
	double done = geti(m, K_BYTES_COPIED), total = geti(m, K_BYTES_TOTAL);
	double pct = total > 0 ? 100.0 * done / total : 0;
	const char *phase = gets_(m, K_PHASE);
	char bar[31], r[32];
	int fill = (int)(pct * 30 / 100);

	if (mig_phase_parse(phase) == MIG_DONE)
		pct = 100, fill = 30;
	for (int i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = 0;
	printf("%4lld %-28.28s %-11s [%s] %5.1f%% %10s/s pause %.1f ms%s%s%s\n",
	       (long long)geti(m, K_ID), gets_(m, K_PATH), phase, bar, pct,
	       human(getd(m, K_RATE), r, sizeof(r)), getd(m, K_PAUSE_MS),
	       *gets_(m, K_ERROR) ? "  " : "", gets_(m, K_ERROR), tty ? "\033[K" : "");
}

json_object *status_of(struct ctl *c, uint64_t id)
{
	json_object *req = json_object_new_object(), *rep, *arr;

	json_object_object_add(req, K_CMD, json_object_new_string(CMD_STATUS));
	if (id)
		json_object_object_add(req, K_ID, json_object_new_int64((int64_t)id));
	rep = call(c, req);
	json_object_put(req);
	if (!rep || !reply_ok(rep)) {
		json_object_put(rep);
		return NULL;
	}
	json_object_object_get_ex(rep, K_MIGRATIONS, &arr);
	json_object_get(arr);
	json_object_put(rep);
	return arr;
}

void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Progress per id until all are over. Plain lines on a pipe (one per phase change),
 * bars redrawn in place on a terminal. Returns 0 only if every one switched. */
int wait_for(struct ctl *c, json_object *ids, bool quiet, bool total)
{
	size_t n = json_object_array_length(ids), ended_before = (size_t)-1;
	bool tty = isatty(STDOUT_FILENO);
	char **last = calloc(n, sizeof(char *));
	int ret = 0;

	for (bool all = false; !all;) {
		uint64_t copied = 0, size = 0;
		size_t ended = 0;
		char a[32], b[32];

		all = true;
		for (size_t i = 0; i < n; i++) {
			json_object *arr = status_of(c, json_object_get_int64(json_object_array_get_idx(ids, i)));
			json_object *m = arr ? json_object_array_get_idx(arr, 0) : NULL;
			const char *phase = m ? gets_(m, K_PHASE) : mig_phase_name(MIG_FAILED);

			if (!terminal_phase(phase))
				all = false;
			else
				ended++;
			if (m) {
				size += geti(m, K_BYTES_TOTAL);
				copied += mig_phase_parse(phase) == MIG_DONE ? geti(m, K_BYTES_TOTAL) : geti(m, K_BYTES_COPIED);
			}
			if (m && (tty || !last[i] || strcmp(last[i], phase))) {
				if (!quiet)
					print_bar(m, tty);
				free(last[i]);
				last[i] = strdup(phase);
			}
			json_object_put(arr);
		}
		/* As a whole: on a terminal every round, on a pipe when a file ends. */
		if (total && !quiet && (tty || ended != ended_before))
			printf("     all: %zu of %zu ended, %s of %s copied%s\n", ended, n,
			       human(copied, a, sizeof(a)), human(size, b, sizeof(b)), tty ? "\033[K" : "");
		ended_before = ended;
		fflush(stdout);
		if (!all) {
			sleep_ms(tty ? 250 : 100);
			if (tty && !quiet)
				printf("\033[%zuA", n + (total ? 1 : 0));
		}
	}
	for (size_t i = 0; i < n; i++) {
		ret |= !last[i] || mig_phase_parse(last[i]) != MIG_DONE;
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
		json_object_object_add(mv, K_PATH, json_object_new_string(rel));
		json_object_object_add(mv, K_TO, json_object_new_string(dest));
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
		return die(2, "migrate: which paths?");
	moves = migrate_moves(c, argc - first, argv + first, a.to, &ret);
	if (!moves)
		return ret;
	req = json_object_new_object();
	json_object_object_add(req, K_CMD, json_object_new_string(CMD_MIGRATE));
	json_object_object_add(req, K_MOVES, moves);
	if (a.bwlimit)
		json_object_object_add(req, K_BWLIMIT, json_object_new_int64((int64_t)a.bwlimit));
	if (a.parallel)
		json_object_object_add(req, K_PARALLEL, json_object_new_int(a.parallel));
	/* The daemon's room check: omitted keys leave its defaults. */
	if (a.margin_given)
		json_object_object_add(req, K_SPACE_MARGIN, json_object_new_int64((int64_t)a.space_margin));
	if (a.no_space_check)
		json_object_object_add(req, K_SPACE_CHECK, json_object_new_boolean(0));
	rep = call(c, req);
	json_object_put(req);
	if (!rep || !reply_ok(rep))
		return put_fail(rep);
	json_object_object_get_ex(rep, K_IDS, &ids);
	for (size_t i = 0; i < json_object_array_length(ids); i++)
		printf("%lld\n", (long long)json_object_get_int64(json_object_array_get_idx(ids, i)));
	fflush(stdout);
	ret = a.wait ? wait_for(c, ids, false, false) : 0;
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
			active |= !terminal_phase(gets_(m, K_PHASE));
		}
		for (size_t i = 0; json && i < json_object_array_length(arr); i++)
			active |= !terminal_phase(gets_(json_object_array_get_idx(arr, i), K_PHASE));
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
		return die(2, "cancel: expected one migration id");
	req = json_object_new_object();
	json_object_object_add(req, K_CMD, json_object_new_string(CMD_CANCEL));
	json_object_object_add(req, K_ID, json_object_new_int64((int64_t)id));
	rep = call(c, req);
	json_object_put(req);
	if (!rep || !reply_ok(rep))
		return put_fail(rep);
	json_object_put(rep);
	return 0;
}

/* The text as the daemon made it: a scraper or a person reads it as it is. */
static int cmd_metrics(struct ctl *c, int argc)
{
	json_object *rep, *text;

	if (argc)
		return die(2, "metrics takes no arguments");
	rep = simple(c, CMD_METRICS);
	if (!rep || !reply_ok(rep) || !json_object_object_get_ex(rep, K_TEXT, &text))
		return put_fail(rep);
	fputs(json_object_get_string(text), stdout);
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

	if (!strcmp(cmd, CMD_DATASTORES))
		return cmd_datastores(c, argc, argv);
	if (!strcmp(cmd, CMD_WHERE))
		return cmd_where(c, argc - json, argv + json, json);
	if (!strcmp(cmd, CMD_MIGRATE))
		return cmd_migrate(c, argc + 1, argv - 1);
	if (!strcmp(cmd, CMD_STATUS))
		return cmd_status(c, argc, argv);
	if (!strcmp(cmd, CMD_CANCEL))
		return cmd_cancel(c, argc, argv);
	if (!strcmp(cmd, CMD_METRICS))
		return cmd_metrics(c, argc);
	if (!strcmp(cmd, "datastore"))
		return cmd_datastore(c, argc, argv);
	if (!strcmp(cmd, "evacuate"))
		return cmd_evacuate(c, argc + 1, argv - 1);
	if (!strcmp(cmd, "rebalance"))
		return cmd_rebalance(c, argc + 1, argv - 1);
	if (strcmp(cmd, CMD_EVENTS))
		return die(2, "unknown command '%s' (see --help)", cmd);
	rep = simple(c, CMD_EVENTS);
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
