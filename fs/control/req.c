/* control_req.c - the control requests: one JSON object in, one JSON object out.
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
 * request changes nothing.
 * Replies: {"ok":true,...} or {"ok":false,"error":"one line"}.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/limits.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "mig.h"
#include "mountinfo.h"
#include "scheduler.h"
#include "testpoint.h"
#include "vdsfs.h"

static char *finish(json_object *o)
{
	char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));

	json_object_put(o);
	return s;
}

static char *error_reply(const char *msg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(msg));
	return finish(o);
}

static json_object *ok_reply(void)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(1));
	return o;
}

static int ds_by_name(struct vds *v, const char *name)
{
	for (int i = 0; i < v->nds; i++)
		if (!strcmp(v->ds[i].name, name))
			return i;
	return -1;
}

/* Bytes allocated to files on a datastore, vdsfs's own state excluded. */
static uint64_t held_bytes(int dfd, bool top, int depth)
{
	int fd = dup(dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	uint64_t sum = 0;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while ((de = readdir(d))) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    (top && !strcmp(de->d_name, VDS_STATE_DIR)) ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode) && depth < 64) {
			int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub >= 0) {
				sum += held_bytes(sub, false, depth + 1);
				close(sub);
			}
		} else if (S_ISREG(st.st_mode)) {
			sum += (uint64_t)st.st_blocks * 512;
		}
	}
	closedir(d);
	return sum;
}

static char *req_datastores(struct vds *v)
{
	json_object *o = ok_reply(), *arr = json_object_new_array();

	for (int i = 0; i < v->nds; i++) {
		json_object *d = json_object_new_object();
		uint64_t avail = 0, total = 0;
		char type[64];

		ds_space(&v->ds[i], &avail, &total);
		mount_type_of(v->ds[i].path, false, type, sizeof(type));
		json_object_object_add(d, "name", json_object_new_string(v->ds[i].name));
		json_object_object_add(d, "path", json_object_new_string(v->ds[i].path));
		json_object_object_add(d, "fs", json_object_new_string(type));
		json_object_object_add(d, "size", json_object_new_int64((int64_t)total));
		json_object_object_add(d, "free", json_object_new_int64((int64_t)avail));
		json_object_object_add(d, "held", json_object_new_int64((int64_t)held_bytes(v->ds[i].fd, true, 0)));
		json_object_object_add(d, "migrations", json_object_new_int(mig_active_on(v, i)));
		json_object_array_add(arr, d);
	}
	json_object_object_add(o, "datastores", arr);
	return finish(o);
}

static char *req_where(struct vds *v, json_object *req)
{
	json_object *paths, *o, *arr;

	if (!json_object_object_get_ex(req, "paths", &paths) || !json_object_is_type(paths, json_type_array))
		return error_reply("where: expected \"paths\": [...]");
	o = ok_reply();
	arr = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(paths); i++) {
		const char *p = json_object_get_string(json_object_array_get_idx(paths, i));
		json_object *e = json_object_new_object();
		struct stat st;
		int ds = vds_find_beneath(v, p, &st);

		json_object_object_add(e, "path", json_object_new_string(p ? p : ""));
		if (ds < 0) {
			json_object_object_add(e, "error", json_object_new_string(strerror(-ds)));
		} else {
			uint64_t id = mig_of_path(v, p);

			json_object_object_add(e, "datastore", json_object_new_string(v->ds[ds].name));
			json_object_object_add(e, "type", json_object_new_string(S_ISDIR(st.st_mode) ? "directory" : "file"));
			json_object_object_add(e, "migration", id ? json_object_new_int64((int64_t)id) : NULL);
		}
		json_object_array_add(arr, e);
	}
	json_object_object_add(o, "where", arr);
	return finish(o);
}

/* The files a migrate request names, in the order named: directories expanded,
 * sorted, each path once. Grows as needed: a folder may hold any number of files. */
struct filelist {
	char **path;
	int *dst;
	size_t n, cap;
};

#define MAX_DEPTH	64	/* directory levels below a named folder */

static void list_free(struct filelist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->path[i]);
	free(l->path);
	free(l->dst);
}

static int list_add(struct filelist *l, const char *path, int dst)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		char **p = realloc(l->path, cap * sizeof(*p));
		int *d = p ? realloc(l->dst, cap * sizeof(*d)) : NULL;

		if (p)
			l->path = p;
		if (!d)
			return -ENOMEM;
		l->dst = d;
		l->cap = cap;
	}
	if (!(l->path[l->n] = strdup(path)))
		return -ENOMEM;
	l->dst[l->n++] = dst;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct named { const char *path; size_t i; };

static int cmp_named(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	return c ? c : x->i < y->i ? -1 : x->i > y->i;
}

/* A file named twice (a folder and a file in it, say) moves once, where it was
 * first named; named twice with different destinations, the request is refused.
 * Sorting, not pairwise comparison: folders of many thousand files stay cheap. */
static int list_dedup(struct vds *v, struct filelist *l, char *err, size_t len)
{
	struct named *s = malloc((l->n ? l->n : 1) * sizeof(*s));
	bool *drop = calloc(l->n ? l->n : 1, sizeof(*drop));
	size_t k = 0;
	int ret = s && drop ? 0 : -ENOMEM;

	for (size_t i = 0; !ret && i < l->n; i++)
		s[i] = (struct named){ l->path[i], i };
	if (!ret)
		qsort(s, l->n, sizeof(*s), cmp_named);
	for (size_t i = 1; !ret && i < l->n; i++) {
		if (strcmp(s[i].path, s[i - 1].path))
			continue;
		if (l->dst[s[i].i] != l->dst[s[i - 1].i]) {
			snprintf(err, len, "%s is named twice, to %s and to %s", s[i].path,
				 v->ds[l->dst[s[i - 1].i]].name, v->ds[l->dst[s[i].i]].name);
			ret = -EINVAL;
		}
		drop[s[i].i] = true;
		s[i].i = s[i - 1].i;	/* a third name compares with the first */
	}
	for (size_t i = 0; !ret && i < l->n; i++) {
		if (drop[i]) {
			free(l->path[i]);
			continue;
		}
		l->path[k] = l->path[i];
		l->dst[k++] = l->dst[i];
	}
	if (!ret)
		l->n = k;
	free(s);
	free(drop);
	return ret;
}

/* Names in every copy of the union directory rel, sorted, possibly repeated. */
static int read_names(struct vds *v, const char *rel, char ***out, size_t *count)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	int ret = 0;

	for (int i = 0; !ret && i < v->nds; i++) {
		int fd = bn_open(v->ds[i].fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		struct dirent *de;

		if (!d) {
			if (fd >= 0)
				close(fd);
			continue;	/* this datastore has no copy of the folder */
		}
		while (!ret && (errno = 0, de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (n == cap) {
				char **p = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof(*p));

				if (!p) {
					ret = -ENOMEM;
					break;
				}
				names = p;
			}
			if (!(names[n] = strdup(de->d_name)))
				ret = -ENOMEM;
			else
				n++;
		}
		if (!ret && errno)
			ret = -errno;
		closedir(d);
	}
	if (!ret)
		qsort(names, n, sizeof(*names), cmp_str);
	*out = names;
	*count = n;
	return ret;
}

/* Every regular file below rel, across all copies of the union directory, sorted.
 * Symlinks and special files are not migrated and are passed over; a name that
 * vanished since the directory was read is no longer part of the folder. */
static int expand_dir(struct vds *v, const char *rel, int dst, struct filelist *l, int depth,
		      char *err, size_t len)
{
	char **names, child[PATH_MAX];
	size_t n;
	int ret;

	if (depth > MAX_DEPTH) {
		snprintf(err, len, "%s: folders nested deeper than %d levels", rel, MAX_DEPTH);
		return -ELOOP;
	}
	ret = read_names(v, rel, &names, &n);
	if (ret)
		snprintf(err, len, "%s: reading the folder: %s", rel, strerror(-ret));
	for (size_t i = 0; !ret && i < n; i++) {
		struct stat st;
		int ds;

		if (i && !strcmp(names[i], names[i - 1]))
			continue;
		if (snprintf(child, sizeof(child), "%s/%s", rel, names[i]) >= (int)sizeof(child)) {
			snprintf(err, len, "%s/%.64s...: path longer than %d bytes", rel, names[i],
				 PATH_MAX - 1);
			ret = -ENAMETOOLONG;
			break;
		}
		ds = vds_find_beneath(v, child, &st);
		if (ds == -ENOENT || ds == -EINVAL)	/* gone, or a symlink */
			continue;
		if (ds < 0) {
			snprintf(err, len, "%.400s: %s", child, strerror(-ds));
			ret = ds;
		} else if (S_ISDIR(st.st_mode)) {
			ret = expand_dir(v, child, dst, l, depth + 1, err, len);
		} else if (S_ISREG(st.st_mode) && (ret = list_add(l, child, dst))) {
			snprintf(err, len, "out of memory listing %s", rel);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return ret;
}

static int collect_move(struct vds *v, json_object *mv, struct filelist *l, char *err, size_t len)
{
	json_object *jp, *jt;
	const char *path, *to;
	struct stat st;
	int dst;

	if (!json_object_object_get_ex(mv, "path", &jp) || !json_object_object_get_ex(mv, "to", &jt) ||
	    !(path = json_object_get_string(jp)) || !(to = json_object_get_string(jt))) {
		snprintf(err, len, "migrate: each move needs \"path\" and \"to\"");
		return -EINVAL;
	}
	if (!vds_path_sane(path)) {
		snprintf(err, len, "'%s' is not a path inside the mount", path);
		return -EINVAL;
	}
	dst = ds_by_name(v, to);
	if (dst < 0) {
		snprintf(err, len, "unknown datastore '%s'", to);
		return -EINVAL;
	}
	if (vds_find_beneath(v, path, &st) >= 0 && S_ISDIR(st.st_mode))
		return expand_dir(v, path, dst, l, 0, err, len);
	if (list_add(l, path, dst)) {
		snprintf(err, len, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static char *req_migrate(struct vds *v, json_object *req)
{
	struct mig_opts mo = { .space_margin = MIG_SPACE_MARGIN, .space_check = true };
	struct filelist l = { 0 };
	json_object *moves, *j, *jpar = NULL, *o;
	uint64_t *ids = NULL;
	char err[512] = "";
	int ret = 0;

	if (!json_object_object_get_ex(req, "moves", &moves) || !json_object_is_type(moves, json_type_array) ||
	    !json_object_array_length(moves))
		ret = -EINVAL, snprintf(err, sizeof(err), "migrate: expected \"moves\": [{\"path\",\"to\"}...]");
	if (json_object_object_get_ex(req, "bwlimit", &j))
		mo.bwlimit = (uint64_t)json_object_get_int64(j);
	if (!ret && json_object_object_get_ex(req, "space_margin", &j)) {
		if (!json_object_is_type(j, json_type_int) || json_object_get_int64(j) < 0)
			ret = -EINVAL, snprintf(err, sizeof(err), "migrate: space_margin must be bytes, 0 or more");
		mo.space_margin = (uint64_t)json_object_get_int64(j);
	}
	if (!ret && json_object_object_get_ex(req, "space_check", &j)) {
		if (!json_object_is_type(j, json_type_boolean))
			ret = -EINVAL, snprintf(err, sizeof(err), "migrate: space_check must be true or false");
		mo.space_check = json_object_get_boolean(j);
	}
	/* How many migrations the daemon runs at once, from now on (all requests). */
	if (json_object_object_get_ex(req, "parallel", &jpar) &&
	    (json_object_get_int(jpar) < 1 || json_object_get_int(jpar) > 64))
		ret = -EINVAL, snprintf(err, sizeof(err), "migrate: parallel must be 1-64");
	else if (jpar)
		mo.parallel = (unsigned)json_object_get_int(jpar);
	for (size_t i = 0; !ret && i < json_object_array_length(moves); i++)
		ret = collect_move(v, json_object_array_get_idx(moves, i), &l, err, sizeof(err));
	if (!ret)
		ret = list_dedup(v, &l, err, sizeof(err));
	if (!ret && !l.n)
		ret = -ENOENT, snprintf(err, sizeof(err), "migrate: no regular file to move");
	if (!ret && !(ids = calloc(l.n, sizeof(*ids))))
		ret = -ENOMEM;
	/* Checked whole and queued whole, or nothing is queued. */
	if (!ret)
		ret = mig_submit(v, (const char *const *)l.path, l.dst, l.n, &mo, ids, err, sizeof(err));
	o = ret ? NULL : ok_reply();
	if (o) {
		json_object *arr = json_object_new_array_ext((int)l.n);

		for (size_t i = 0; i < l.n; i++)
			json_object_array_add(arr, json_object_new_int64((int64_t)ids[i]));
		json_object_object_add(o, "ids", arr);
	}
	list_free(&l);
	free(ids);
	return o ? finish(o) : error_reply(err[0] ? err : strerror(-ret));
}

static uint64_t req_id(json_object *req)
{
	json_object *j;

	if (!json_object_object_get_ex(req, "id", &j) || !json_object_is_type(j, json_type_int))
		return 0;
	return json_object_get_int64(j) > 0 ? (uint64_t)json_object_get_int64(j) : 0;
}

/* Status and events list finished migrations for the most recent
 * MIG_KEEP_FINISHED only, and say how many were dropped. */
static void add_dropped(json_object *o, uint64_t dropped)
{
	json_object_object_add(o, "dropped", json_object_new_int64((int64_t)dropped));
	json_object_object_add(o, "keep_finished", json_object_new_int(MIG_KEEP_FINISHED));
}

static char *req_status(struct vds *v, json_object *req)
{
	json_object *o = ok_reply();
	uint64_t id = req_id(req), dropped;
	json_object *arr = mig_status(v, id, &dropped);

	if (id && !json_object_array_length(arr)) {
		json_object_put(arr);
		json_object_put(o);
		return error_reply(id < v->next_mig_id ? "no such migration" MIG_DROPPED_HINT
						       : "no such migration");
	}
	json_object_object_add(o, "migrations", arr);
	add_dropped(o, dropped);
	return finish(o);
}

static char *req_cancel(struct vds *v, json_object *req)
{
	char err[256];
	uint64_t id = req_id(req);

	if (!id)
		return error_reply("cancel: expected \"id\": N");
	if (mig_cancel(v, id, err, sizeof(err)))
		return error_reply(err);
	return finish(ok_reply());
}

char *control_handle(struct vds *v, const char *line)
{
	json_object *req = json_tokener_parse(line), *jc;
	const char *cmd;
	char *out;

	if (!req || !json_object_is_type(req, json_type_object)) {
		json_object_put(req);
		return error_reply("request is not a JSON object");
	}
	if (!json_object_object_get_ex(req, "cmd", &jc) || !(cmd = json_object_get_string(jc)))
		out = error_reply("request has no \"cmd\"");
	else if (!strcmp(cmd, "datastores"))
		out = req_datastores(v);
	else if (!strcmp(cmd, "where"))
		out = req_where(v, req);
	else if (!strcmp(cmd, "migrate"))
		out = req_migrate(v, req);
	else if (!strcmp(cmd, "status"))
		out = req_status(v, req);
	else if (!strcmp(cmd, "cancel"))
		out = req_cancel(v, req);
	else if (!strcmp(cmd, "events")) {
		json_object *o = ok_reply();
		uint64_t dropped;

		json_object_object_add(o, "events", mig_events(v, &dropped));
		add_dropped(o, dropped);
		out = finish(o);
	} else if (!strcmp(cmd, "test-release")) {	/* testpoint.h: test-only */
		testpoint_release();
		out = finish(ok_reply());
	} else
		out = error_reply("unknown command");
	json_object_put(req);
	return out;
}
