/* dscmd.c - vdsctl's datastore operations: datastore add|remove|maintenance,
 * evacuate and rebalance.
 *
 * The daemon plans and moves; this file shows the plan and, with --wait, follows
 * the migrations it queued. An evacuation is finished by asking again once its
 * migrations are over (the daemon then moves what is left and removes the empty
 * folders): --wait does exactly that, until the datastore is empty or something
 * failed, so an interrupted evacuation is finished by running the same command.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "vdsctl.h"

static json_object *request(const char *cmd)
{
	json_object *req = json_object_new_object();

	json_object_object_add(req, K_CMD, json_object_new_string(cmd));
	return req;
}

/* Send req (consumed); 0 if the daemon said ok, 1 if not (its error printed). */
static int send_simple(struct ctl *c, json_object *req)
{
	json_object *rep = call(c, req);

	json_object_put(req);
	if (!rep || !reply_ok(rep))
		return put_fail(rep);
	json_object_put(rep);
	return 0;
}

/* A PATH typed relative to here means here, not the daemon's working directory. */
static char *absolute_spec(struct ctl *c, const char *spec)
{
	const char *eq = strchr(spec, '=');
	char *out;

	if (!eq || eq[1] == '/' || !eq[1] || !c->cwd)
		return strdup(spec);
	if (asprintf(&out, "%.*s=%s/%s", (int)(eq - spec), spec, c->cwd, eq + 1) < 0)
		return NULL;
	return out;
}

int cmd_datastore(struct ctl *c, int argc, char **argv)
{
	json_object *req;
	const char *sub = argc ? argv[0] : "";

	if (!strcmp(sub, "add") && argc == 2) {
		char *spec = absolute_spec(c, argv[1]);

		if (!spec)
			return die(1, "out of memory");
		req = request(CMD_DS_ADD);
		json_object_object_add(req, K_SPEC, json_object_new_string(spec));
		free(spec);
		return send_simple(c, req);
	}
	if (!strcmp(sub, "remove") && argc == 2) {
		req = request(CMD_DS_REMOVE);
		json_object_object_add(req, K_NAME, json_object_new_string(argv[1]));
		return send_simple(c, req);
	}
	if (!strcmp(sub, "maintenance") && argc == 3 &&
	    (!strcmp(argv[2], "on") || !strcmp(argv[2], "off"))) {
		req = request(CMD_DS_MAINT);
		json_object_object_add(req, K_NAME, json_object_new_string(argv[1]));
		json_object_object_add(req, K_ON, json_object_new_boolean(!strcmp(argv[2], "on")));
		return send_simple(c, req);
	}
	return die(2, "datastore: expected 'add NAME=PATH', 'remove NAME' or "
		   "'maintenance NAME on|off'");
}

/* PCT as typed ("90", "90%", "87.5"): 1-100, else -1. */
static double percent(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || (*end && strcmp(end, "%")) || !(v >= 1 && v <= 100))
		return -1;
	return v;
}

static void print_plan(json_object *rep, const char *what)
{
	json_object *plan;
	char h[32];

	if (!json_object_object_get_ex(rep, K_PLAN, &plan) || !json_object_array_length(plan)) {
		printf("%s: nothing to move\n", what);
		return;
	}
	printf("%s: %zu to move, %s\n", what, json_object_array_length(plan),
	       human(geti(rep, K_BYTES), h, sizeof(h)));
	for (size_t i = 0; i < json_object_array_length(plan); i++) {
		json_object *e = json_object_array_get_idx(plan, i);
		const char *to = gets_(e, K_TO), *err = gets_(e, K_ERROR);

		printf("  %-40s %-9s %10s  %s -> %s", gets_(e, K_PATH), gets_(e, K_TYPE),
		       human(geti(e, K_BYTES), h, sizeof(h)), gets_(e, K_FROM), *to ? to : "(no room)");
		if (geti(e, K_LINKS))
			printf("  %lld names", (long long)geti(e, K_LINKS));
		if (geti(e, K_ID))
			printf("  migration %lld", (long long)geti(e, K_ID));
		if (*err)
			printf("  error: %s", err);
		putchar('\n');
	}
}

/* The migration ids a reply's plan queued, appended to ids. */
static size_t plan_ids(json_object *rep, json_object *ids)
{
	json_object *plan;
	size_t n = 0;

	if (!json_object_object_get_ex(rep, K_PLAN, &plan))
		return 0;
	for (size_t i = 0; i < json_object_array_length(plan); i++) {
		int64_t id = geti(json_object_array_get_idx(plan, i), K_ID);

		if (id) {
			json_object_array_add(ids, json_object_new_int64(id));
			n++;
		}
	}
	return n;
}

struct evac_args {
	const char *name;
	json_object *to;	/* array of names, or NULL */
	double pct;		/* 0: the daemon's default */
	bool dry_run, wait, json, cancel;
};

static int evac_opts(struct evac_args *a, int argc, char **argv, bool rebalance)
{
	static const struct option lo[] = { { "to", 1, 0, 't' }, { "dry-run", 0, 0, 'n' },
		{ "wait", 0, 0, 'w' }, { "max-fill", 1, 0, 'f' }, { "threshold", 1, 0, 'T' },
		{ "json", 0, 0, 'j' }, { "cancel", 0, 0, 'c' }, { 0 } };
	const char *cmd = rebalance ? "rebalance" : "evacuate";
	int opt;

	optind = 0;	/* glibc: start over, options and names in any order */
	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (opt == 't' && !rebalance) {
			if (!a->to)
				a->to = json_object_new_array();
			json_object_array_add(a->to, json_object_new_string(optarg));
		} else if (opt == 'n') {
			a->dry_run = true;
		} else if (opt == 'w') {
			a->wait = true;
		} else if (opt == 'j') {
			a->json = true;
		} else if (opt == 'c' && !rebalance) {
			a->cancel = true;
		} else if ((opt == 'f' && !rebalance) || (opt == 'T' && rebalance)) {
			if ((a->pct = percent(optarg)) < 0)
				return die(2, "--%s: expected a percentage, 1-100",
					   opt == 'f' ? "max-fill" : "threshold");
		} else {
			if (opt != '?')
				fprintf(stderr, "vdsctl: %s: option '%s' is not one of its own\n", cmd,
					argv[optind - 1]);
			return 2;
		}
	}
	if (!rebalance && optind != argc - 1)
		return die(2, "evacuate: expected one datastore NAME");
	if (rebalance && optind != argc)
		return die(2, "rebalance: unexpected argument '%s'", argv[optind]);
	a->name = rebalance ? NULL : argv[optind];
	if (a->cancel && (a->to || a->dry_run || a->wait || a->pct))
		return die(2, "evacuate --cancel takes no other option");
	return 0;
}

static json_object *evac_request(const struct evac_args *a, bool rebalance)
{
	json_object *req = request(rebalance ? CMD_REBALANCE : CMD_EVACUATE);

	if (a->name)
		json_object_object_add(req, K_NAME, json_object_new_string(a->name));
	if (a->to)
		json_object_object_add(req, K_TO, json_object_get(a->to));
	if (a->pct)
		json_object_object_add(req, rebalance ? K_THRESHOLD : K_MAX_FILL,
				       json_object_new_double(a->pct));
	if (a->dry_run)
		json_object_object_add(req, K_DRY_RUN, json_object_new_boolean(1));
	return req;
}

/* The final statuses of ids, for --json --wait. */
static json_object *statuses(struct ctl *c, json_object *ids)
{
	json_object *out = json_object_new_array();

	for (size_t i = 0; i < json_object_array_length(ids); i++) {
		json_object *arr = status_of(c, json_object_get_int64(json_object_array_get_idx(ids, i)));

		if (arr && json_object_array_length(arr))
			json_object_array_add(out, json_object_get(json_object_array_get_idx(arr, 0)));
		json_object_put(arr);
	}
	return out;
}

static int evac_cancel(struct ctl *c, const struct evac_args *a)
{
	json_object *req = request(CMD_EVAC_CANCEL), *rep;

	json_object_object_add(req, K_NAME, json_object_new_string(a->name));
	rep = call(c, req);
	json_object_put(req);
	if (!rep || !reply_ok(rep))
		return put_fail(rep);
	if (a->json)
		puts(json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PRETTY));
	else
		printf("evacuate %s: %lld migration%s cancelled\n", a->name,
		       (long long)geti(rep, K_CANCELLED), geti(rep, K_CANCELLED) == 1 ? "" : "s");
	json_object_put(rep);
	return 0;
}

/* One round: ask, show. NULL (message printed, *code set) if refused. */
static json_object *evac_round(struct ctl *c, const struct evac_args *a, bool rebalance,
			       int *code)
{
	json_object *req = evac_request(a, rebalance), *rep = call(c, req);
	char what[128];

	json_object_put(req);
	if (!rep) {
		*code = 1;
		return NULL;
	}
	snprintf(what, sizeof(what), "%s%s%s%s", rebalance ? "rebalance" : "evacuate ",
		 a->name ? a->name : "", a->dry_run ? " (dry run: nothing moves)" : "",
		 reply_ok_quiet(rep) ? "" : " (refused)");
	if (!a->json)
		print_plan(rep, what);
	if (!reply_ok(rep)) {
		if (a->json)
			puts(json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PRETTY));
		*code = put_fail(rep);
		return NULL;
	}
	return rep;
}

static bool done_of(json_object *rep)
{
	json_object *d;

	return json_object_object_get_ex(rep, K_DONE, &d) && json_object_get_boolean(d);
}

static int evac_run(struct ctl *c, const struct evac_args *a, bool rebalance)
{
	json_object *rep, *ids = json_object_new_array();
	long long moved = 0;
	int code = 0;

	for (;;) {
		size_t queued;

		if (!(rep = evac_round(c, a, rebalance, &code)))
			break;
		queued = plan_ids(rep, ids);
		moved += geti(rep, K_MOVED);
		if (!a->wait || a->dry_run || rebalance || done_of(rep) || geti(rep, K_FAILED)) {
			if (a->wait && queued)
				code = wait_for(c, ids, a->json, true);
			break;
		}
		if (queued) {
			if ((code = wait_for(c, ids, a->json, true)))
				break;
		} else if (geti(rep, K_IN_FLIGHT)) {
			sleep_ms(500);	/* another request's migrations off it: let them end */
		} else {
			break;		/* nothing queued, nothing running, not done: say so */
		}
		json_object_put(rep);
	}
	if (rep && a->json) {
		if (a->wait)
			json_object_object_add(rep, K_MIGRATIONS, statuses(c, ids));
		puts(json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PRETTY));
	} else if (rep && rebalance) {
		json_object *plan = NULL;
		size_t n = json_object_object_get_ex(rep, K_PLAN, &plan) ?
			   json_object_array_length(plan) : 0;

		printf("rebalance: %zu migration%s%s; %lld datastore%s above the threshold %s\n",
		       n, n == 1 ? "" : "s",
		       a->dry_run ? " planned" : a->wait ? (code ? ", not all done" : ", done")
						   : " queued",
		       (long long)geti(rep, K_STILL_OVER), geti(rep, K_STILL_OVER) == 1 ? "" : "s",
		       a->dry_run || !a->wait ? "after it" : "now");
	} else if (rep && !a->dry_run) {
		printf("evacuate %s: %s; %zu migration%s, %lld other object%s moved%s\n", a->name,
		       done_of(rep) ? "done, it holds nothing but .vdsfs/" :
		       a->wait ? "not finished" : "started",
		       json_object_array_length(ids), json_object_array_length(ids) == 1 ? "" : "s",
		       moved, moved == 1 ? "" : "s",
		       done_of(rep) || a->wait ? "" : "; run it again with --wait to finish");
	}
	if (rep && a->wait && !a->dry_run && !rebalance && !done_of(rep) && !code)
		code = 1;
	if (rep && geti(rep, K_FAILED) && !code)
		code = 1;
	json_object_put(rep);
	json_object_put(ids);
	return code;
}

int cmd_evacuate(struct ctl *c, int argc, char **argv)
{
	struct evac_args a = { 0 };
	int code = evac_opts(&a, argc, argv, false);

	if (!code)
		code = a.cancel ? evac_cancel(c, &a) : evac_run(c, &a, false);
	json_object_put(a.to);
	return code;
}

int cmd_rebalance(struct ctl *c, int argc, char **argv)
{
	struct evac_args a = { 0 };
	int code = evac_opts(&a, argc, argv, true);

	if (!code)
		code = evac_run(c, &a, true);
	return code;
}
