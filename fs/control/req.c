/* req.c - the control requests: one JSON object in, one JSON object out.
 *
 *   {"cmd":"datastores"}
 *   {"cmd":"where","paths":["vm/disk1",...]}
 *   {"cmd":"migrate","moves":[{"path":"vm","to":"DS4"},...],"bwlimit":N,"parallel":N,
 *    "space_margin":BYTES (default 64 MiB),"space_check":false (default true)}
 *   {"cmd":"status"[,"id":N]}      {"cmd":"events"}      {"cmd":"cancel","id":N}
 *
 * status and events replies carry "dropped" (finished records no longer listed) and
 * "keep_finished" (how many finished ones are listed at most, MIG_KEEP_FINISHED).
 *
 * Paths are relative to the mount root (vdsctl turns what the user typed into
 * that). A migrate request is validated whole — every file of every directory named,
 * however many — before the first migration is queued, and then queued whole: a bad
 * request changes nothing (mig_request).
 * Replies: {"ok":true,...} or {"ok":false,"error":"one line"}. This file is the only
 * one that encodes JSON for the wire; the keys are common/proto.h's.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "mig.h"
#include "mountinfo.h"
#include "proto.h"
#include "store.h"

static char *finish(json_object *o)
{
	char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));

	json_object_put(o);
	return s;
}

static char *error_reply(const char *msg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, K_OK, json_object_new_boolean(0));
	json_object_object_add(o, K_ERROR, json_object_new_string(msg));
	return finish(o);
}

static json_object *ok_reply(void)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, K_OK, json_object_new_boolean(1));
	return o;
}

static void add_int(json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_int64((int64_t)v));
}

static void add_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}

static char *req_datastores(struct control *c)
{
	const struct store *s = c->store;
	json_object *o = ok_reply(), *arr = json_object_new_array();

	for (int i = 0; i < s->nds; i++) {
		json_object *d = json_object_new_object();
		uint64_t avail = 0, total = 0;
		char type[64];

		ds_space(&s->ds[i], &avail, &total);
		mount_type_of(s->ds[i].path, false, type, sizeof(type));
		add_str(d, K_NAME, s->ds[i].name);
		add_str(d, K_PATH, s->ds[i].path);
		add_str(d, K_FS, type);
		add_int(d, K_SIZE, total);
		add_int(d, K_FREE, avail);
		add_int(d, K_HELD, store_held_bytes(&s->ds[i]));
		json_object_object_add(d, K_MIGRATIONS, json_object_new_int(mig_active_on(c->migs, i)));
		json_object_array_add(arr, d);
	}
	json_object_object_add(o, K_DATASTORES, arr);
	return finish(o);
}

static char *req_where(struct control *c, json_object *req)
{
	json_object *paths, *o, *arr;

	if (!json_object_object_get_ex(req, K_PATHS, &paths) || !json_object_is_type(paths, json_type_array))
		return error_reply("where: expected \"paths\": [...]");
	o = ok_reply();
	arr = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(paths); i++) {
		const char *p = json_object_get_string(json_object_array_get_idx(paths, i));
		json_object *e = json_object_new_object();
		struct mig_where w;
		int ret = p ? mig_where(c->migs, p, &w) : -EINVAL;

		add_str(e, K_PATH, p ? p : "");
		if (ret) {
			add_str(e, K_ERROR, strerror(-ret));
		} else {
			add_str(e, K_DATASTORE, w.datastore);
			add_str(e, K_TYPE, w.is_dir ? "directory" : "file");
			json_object_object_add(e, K_MIGRATION, w.migration ?
					       json_object_new_int64((int64_t)w.migration) : NULL);
		}
		json_object_array_add(arr, e);
	}
	json_object_object_add(o, K_WHERE, arr);
	return finish(o);
}

/* The request's options, checked; 0 or -EINVAL with one line in err. */
static int migrate_opts(json_object *req, struct mig_opts *mo, char *err, size_t len)
{
	json_object *j;

	if (json_object_object_get_ex(req, K_BWLIMIT, &j))
		mo->bwlimit = (uint64_t)json_object_get_int64(j);
	if (json_object_object_get_ex(req, K_SPACE_MARGIN, &j)) {
		if (!json_object_is_type(j, json_type_int) || json_object_get_int64(j) < 0)
			return snprintf(err, len, "migrate: space_margin must be bytes, 0 or more"), -EINVAL;
		mo->space_margin = (uint64_t)json_object_get_int64(j);
	}
	if (json_object_object_get_ex(req, K_SPACE_CHECK, &j)) {
		if (!json_object_is_type(j, json_type_boolean))
			return snprintf(err, len, "migrate: space_check must be true or false"), -EINVAL;
		mo->space_check = json_object_get_boolean(j);
	}
	/* How many migrations the daemon runs at once, from now on (all requests). */
	if (json_object_object_get_ex(req, K_PARALLEL, &j)) {
		if (json_object_get_int(j) < 1 || json_object_get_int(j) > 64)
			return snprintf(err, len, "migrate: parallel must be 1-64"), -EINVAL;
		mo->parallel = (unsigned)json_object_get_int(j);
	}
	return 0;
}

/* The moves named, pointing into req (valid while it lives). */
static int migrate_moves(json_object *req, struct mig_move **out, size_t *n, char *err,
			 size_t len)
{
	json_object *moves;
	struct mig_move *mv;

	if (!json_object_object_get_ex(req, K_MOVES, &moves) ||
	    !json_object_is_type(moves, json_type_array) || !json_object_array_length(moves))
		return snprintf(err, len, "migrate: expected \"moves\": [{\"path\",\"to\"}...]"), -EINVAL;
	*n = json_object_array_length(moves);
	mv = calloc(*n, sizeof(*mv));
	if (!mv)
		return snprintf(err, len, "out of memory"), -ENOMEM;
	for (size_t i = 0; i < *n; i++) {
		json_object *m = json_object_array_get_idx(moves, i), *jp, *jt;

		if (!json_object_object_get_ex(m, K_PATH, &jp) || !json_object_object_get_ex(m, K_TO, &jt) ||
		    !(mv[i].path = json_object_get_string(jp)) || !(mv[i].to = json_object_get_string(jt))) {
			free(mv);
			return snprintf(err, len, "migrate: each move needs \"path\" and \"to\""), -EINVAL;
		}
	}
	*out = mv;
	return 0;
}

static char *req_migrate(struct control *c, json_object *req)
{
	struct mig_opts mo = { .space_margin = MIG_SPACE_MARGIN, .space_check = true };
	struct mig_move *mv = NULL;
	uint64_t *ids = NULL;
	size_t n = 0, nids = 0;
	char err[512] = "";
	json_object *o, *arr;
	int ret = migrate_opts(req, &mo, err, sizeof(err));

	if (!ret)
		ret = migrate_moves(req, &mv, &n, err, sizeof(err));
	/* Checked whole and queued whole, or nothing is queued. */
	if (!ret)
		ret = mig_request(c->migs, mv, n, &mo, &ids, &nids, err, sizeof(err));
	free(mv);
	if (ret)
		return error_reply(err[0] ? err : strerror(-ret));
	o = ok_reply();
	arr = json_object_new_array_ext((int)nids);
	for (size_t i = 0; i < nids; i++)
		json_object_array_add(arr, json_object_new_int64((int64_t)ids[i]));
	json_object_object_add(o, K_IDS, arr);
	free(ids);
	return finish(o);
}

static uint64_t req_id(json_object *req)
{
	json_object *j;

	if (!json_object_object_get_ex(req, K_ID, &j) || !json_object_is_type(j, json_type_int))
		return 0;
	return json_object_get_int64(j) > 0 ? (uint64_t)json_object_get_int64(j) : 0;
}

/* Status and events list finished migrations for the most recent
 * MIG_KEEP_FINISHED only, and say how many were dropped. */
static void add_dropped(json_object *o, uint64_t dropped)
{
	add_int(o, K_DROPPED, dropped);
	json_object_object_add(o, K_KEEP_FINISHED, json_object_new_int(MIG_KEEP_FINISHED));
}

static json_object *mig_json(const struct mig_info *m)
{
	json_object *o = json_object_new_object();

	add_int(o, K_ID, m->id);
	add_str(o, K_PATH, m->path);
	add_str(o, K_FROM, m->from);
	add_str(o, K_TO, m->to);
	add_str(o, K_PHASE, mig_phase_name(m->phase));
	add_int(o, K_BYTES_COPIED, m->bytes_copied);
	add_int(o, K_BYTES_TOTAL, m->bytes_total);
	json_object_object_add(o, K_RATE, json_object_new_double(m->rate));
	json_object_object_add(o, K_ETA_S, json_object_new_double(m->eta_s));
	add_int(o, K_DIFF_BYTES, m->diff_bytes);
	add_int(o, K_MERGED_BYTES, m->merged_bytes);
	json_object_object_add(o, K_COPY_MS, json_object_new_double(m->copy_ns / 1e6));
	json_object_object_add(o, K_CONVERGE_MS, json_object_new_double(m->converge_ns / 1e6));
	json_object_object_add(o, K_FLUSH_MS, json_object_new_double(m->flush_ns / 1e6));
	json_object_object_add(o, K_PAUSE_MS, json_object_new_double(m->pause_ns / 1e6));
	json_object_object_add(o, K_CLEANUP_MS, json_object_new_double(m->cleanup_ns / 1e6));
	add_int(o, K_QUEUED_NS, m->queued_ns);
	add_int(o, K_STARTED_NS, m->started_ns);
	add_int(o, K_ENDED_NS, m->ended_ns);
	add_int(o, K_STARTED_SEQ, m->started_seq);
	add_int(o, K_ENDED_SEQ, m->ended_seq);
	json_object_object_add(o, K_RECOVERED, json_object_new_boolean(m->recovered));
	json_object_object_add(o, K_RESUMED, json_object_new_boolean(m->resumed));
	if (m->resumed) {
		add_int(o, K_RESUMED_FROM, m->resumed_from);
		add_int(o, K_RECOPIED, m->recopied);
	}
	if (m->msg[0])
		add_str(o, m->is_error ? K_ERROR : K_NOTE, m->msg);
	if (m->held_at)
		add_str(o, K_HELD_AT, m->held_at);
	return o;
}

static char *req_status(struct control *c, json_object *req)
{
	uint64_t id = req_id(req), dropped;
	struct mig_info *list;
	json_object *o, *arr;
	size_t n;

	if (mig_list(c->migs, id, &list, &n, &dropped))
		return error_reply("out of memory");
	if (id && !n) {
		mig_info_free(list, n);
		return error_reply(mig_id_used(c->migs, id) ? "no such migration" MIG_DROPPED_HINT
							   : "no such migration");
	}
	o = ok_reply();
	arr = json_object_new_array_ext((int)n);
	for (size_t i = 0; i < n; i++)
		json_object_array_add(arr, mig_json(&list[i]));
	mig_info_free(list, n);
	json_object_object_add(o, K_MIGRATIONS, arr);
	add_dropped(o, dropped);
	return finish(o);
}

static char *req_events(struct control *c)
{
	struct mig_event *ev;
	json_object *o, *arr;
	uint64_t dropped;
	size_t n;

	if (mig_events(c->migs, &ev, &n, &dropped))
		return error_reply("out of memory");
	o = ok_reply();
	arr = json_object_new_array_ext((int)n);
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_new_object();

		add_int(e, K_SEQ, ev[i].seq);
		add_int(e, K_TS_NS, ev[i].ts_ns);
		add_str(e, K_EVENT, ev[i].event);
		add_int(e, K_ID, ev[i].id);
		add_str(e, K_PATH, ev[i].path);
		add_str(e, K_FROM, ev[i].from);
		add_str(e, K_TO, ev[i].to);
		json_object_array_add(arr, e);
	}
	mig_events_free(ev, n);
	json_object_object_add(o, K_EVENTS, arr);
	add_dropped(o, dropped);
	return finish(o);
}

static char *req_cancel(struct control *c, json_object *req)
{
	char err[256];
	uint64_t id = req_id(req);

	if (!id)
		return error_reply("cancel: expected \"id\": N");
	if (mig_cancel(c->migs, id, err, sizeof(err)))
		return error_reply(err);
	return finish(ok_reply());
}

char *control_handle(struct control *c, const char *line)
{
	json_object *req = json_tokener_parse(line), *jc;
	const char *cmd;
	char *out;

	if (!req || !json_object_is_type(req, json_type_object)) {
		json_object_put(req);
		return error_reply("request is not a JSON object");
	}
	if (!json_object_object_get_ex(req, K_CMD, &jc) || !(cmd = json_object_get_string(jc)))
		out = error_reply("request has no \"cmd\"");
	else if (!strcmp(cmd, CMD_DATASTORES))
		out = req_datastores(c);
	else if (!strcmp(cmd, CMD_WHERE))
		out = req_where(c, req);
	else if (!strcmp(cmd, CMD_MIGRATE))
		out = req_migrate(c, req);
	else if (!strcmp(cmd, CMD_STATUS))
		out = req_status(c, req);
	else if (!strcmp(cmd, CMD_CANCEL))
		out = req_cancel(c, req);
	else if (!strcmp(cmd, CMD_EVENTS))
		out = req_events(c);
#ifdef VDS_TEST_HOOKS
	else if (!strcmp(cmd, CMD_TEST_RELEASE)) {
		mig_test_release(c->migs);
		out = finish(ok_reply());
	}
#endif
	else
		out = error_reply("unknown command");
	json_object_put(req);
	return out;
}
