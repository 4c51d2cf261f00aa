/* evacuate.c - empty a datastore, or even out the full ones, through migrations.
 *
 * An evacuation is stateless: each run walks the datastore as it is now, plans a
 * destination for what is on it (plan.c), queues the regular files as ordinary
 * migrations (mig_submit: the scheduler's distinct-datastore rule and its limit of
 * four at once apply as to any request) and moves the rest itself (evac_move.c).
 * Files already migrating are left to finish; folders are removed once empty. So
 * running it again finishes what one run started, after the migrations end, after
 * a cancel, or after a crash (whose recovery leaves each file whole on one
 * datastore): that is how `vdsctl evacuate --wait` completes, and how an
 * interrupted evacuation is resumed.
 *
 * Invariants:
 *  1. The datastore is put in maintenance before it is walked, so nothing new
 *     lands on it while it empties (a dry run changes nothing, maintenance
 *     included; a plan that does not fit puts the mode back as it was).
 *  2. The plan is all or nothing: when anything has no room, nothing moves.
 *  3. Only what the union shows from this datastore is moved: a copy shadowed by
 *     another datastore's (or hidden after a switch) is reported and left.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "errmsg.h"
#include "evac_int.h"
#include "plan.h"

#define WALK_MAX_DEPTH	256

const char *evac_kind_name(enum evac_kind k)
{
	static const char *const names[] = { "file", "hardlinks", "symlink", "fifo", "socket",
					     "device" };

	return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}

int evac_set_msg(struct evac_entry *e, int err, const char *fmt, ...)
{
	va_list ap;

	free(e->msg);
	va_start(ap, fmt);
	if (vasprintf(&e->msg, fmt, ap) < 0)
		e->msg = NULL;
	va_end(ap);
	e->err = err;
	return err;
}

void evac_result_free(struct evac_result *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->e[i].path);
		free(r->e[i].msg);
	}
	free(r->e);
	memset(r, 0, sizeof(*r));
}

static struct evac_entry *result_add(struct evac_result *r, const char *path, enum evac_kind k)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		struct evac_entry *e = realloc(r->e, cap * sizeof(*e));

		if (!e)
			return NULL;
		r->e = e;
		r->cap = cap;
	}
	memset(&r->e[r->n], 0, sizeof(r->e[0]));
	if (!(r->e[r->n].path = strdup(path)))
		return NULL;
	r->e[r->n].kind = k;
	return &r->e[r->n++];
}

/* What a walk of one datastore found. */
struct walk {
	struct migs *g;
	int src;
	bool files_only;		/* rebalance: regular files alone */
	struct evac_result *r;
	char **dirs;			/* folders, parents before children */
	size_t ndirs, dirs_cap;
	struct evac_group *groups;
	size_t ngroups, groups_cap;
	int err;
	char *errmsg;
	size_t errlen;
};

static void walk_free(struct walk *w)
{
	for (size_t i = 0; i < w->ndirs; i++)
		free(w->dirs[i]);
	free(w->dirs);
	for (size_t i = 0; i < w->ngroups; i++) {
		for (unsigned k = 0; k < w->groups[i].n; k++)
			free(w->groups[i].names[k]);
		free(w->groups[i].names);
	}
	free(w->groups);
}

static int oom(struct walk *w)
{
	return w->err = vds_err(w->errmsg, w->errlen, -ENOMEM, "out of memory walking datastore %s",
				w->g->store->ds[w->src].name);
}

static int add_dir(struct walk *w, const char *path)
{
	if (w->ndirs == w->dirs_cap) {
		size_t cap = w->dirs_cap ? w->dirs_cap * 2 : 64;
		char **d = realloc(w->dirs, cap * sizeof(*d));

		if (!d)
			return oom(w);
		w->dirs = d;
		w->dirs_cap = cap;
	}
	if (!(w->dirs[w->ndirs] = strdup(path)))
		return oom(w);
	w->ndirs++;
	return 0;
}

/* A name of a hard-linked inode: its group's entry is made at the first name. */
static int add_link(struct walk *w, const char *path, const struct stat *st)
{
	struct evac_group *gr = NULL;

	for (size_t i = 0; i < w->ngroups && !gr; i++)
		if (w->groups[i].ino == st->st_ino)
			gr = &w->groups[i];
	if (!gr) {
		struct evac_entry *e;

		if (w->ngroups == w->groups_cap) {
			size_t cap = w->groups_cap ? w->groups_cap * 2 : 16;
			struct evac_group *p = realloc(w->groups, cap * sizeof(*p));

			if (!p)
				return oom(w);
			w->groups = p;
			w->groups_cap = cap;
		}
		if (!(e = result_add(w->r, path, EVAC_LINKS)))
			return oom(w);
		e->bytes = (uint64_t)st->st_blocks * 512;
		gr = &w->groups[w->ngroups++];
		*gr = (struct evac_group){ .ino = st->st_ino, .entry = w->r->n - 1 };
	}
	if (gr->n == gr->cap) {
		unsigned cap = gr->cap ? gr->cap * 2 : 4;
		char **p = realloc(gr->names, cap * sizeof(*p));

		if (!p)
			return oom(w);
		gr->names = p;
		gr->cap = cap;
	}
	if (!(gr->names[gr->n] = strdup(path)))
		return oom(w);
	gr->n++;
	w->r->e[gr->entry].nlinks = gr->n;
	return 0;
}

static enum evac_kind kind_of(mode_t m)
{
	return S_ISREG(m) ? EVAC_FILE : S_ISLNK(m) ? EVAC_SYMLINK : S_ISFIFO(m) ? EVAC_FIFO :
	       S_ISSOCK(m) ? EVAC_SOCKET : EVAC_DEVICE;
}

/* One non-folder found at path on the datastore. */
static int found(struct walk *w, const char *path, const struct stat *st)
{
	struct stat ust;
	struct evac_entry *e;
	int shown;

	if (w->files_only && (!S_ISREG(st->st_mode) || st->st_nlink > 1))
		return 0;
	ns_lock_shared(w->g->ns);
	shown = ns_find(w->g->ns, path, &ust);
	ns_unlock(w->g->ns);
	if (shown != w->src || ust.st_ino != st->st_ino) {	/* invariant 3 */
		if (w->files_only)
			return 0;
		if (!(e = result_add(w->r, path, kind_of(st->st_mode))))
			return oom(w);
		e->from = w->g->store->ds[w->src].name;
		w->r->failed++;
		return evac_set_msg(e, -EEXIST, "not what the mount shows at that path "
				    "(another datastore's copy, or an old one being removed); left "
				    "in place"), 0;
	}
	if (S_ISREG(st->st_mode) && mig_of_path(w->g, path)) {
		w->r->in_flight++;
		return 0;
	}
	if (st->st_nlink > 1)
		return add_link(w, path, st);
	if (!(e = result_add(w->r, path, kind_of(st->st_mode))))
		return oom(w);
	e->bytes = S_ISREG(st->st_mode) ? (uint64_t)st->st_blocks * 512 : 0;
	return 0;
}

static int walk_dir(struct walk *w, int dfd, const char *rel, int depth)
{
	/* A fresh open, not a dup: a dup would share (and move) the datastore fd's
	 * offset. */
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	char path[PATH_MAX];

	if (!d) {
		if (fd >= 0)
			close(fd);
		return w->err = vds_err(w->errmsg, w->errlen, -errno, "reading %s on %s: %s", rel,
					w->g->store->ds[w->src].name, strerror(errno));
	}
	if (depth > WALK_MAX_DEPTH)
		w->err = vds_err(w->errmsg, w->errlen, -ELOOP, "%s: folders nested deeper than %d "
				 "levels", rel, WALK_MAX_DEPTH);
	while (!w->err && (de = readdir(d))) {
		struct stat st;
		int n;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    (depth == 0 && !strcmp(de->d_name, VDS_STATE_DIR)))
			continue;
		n = depth ? snprintf(path, sizeof(path), "%s/%s", rel, de->d_name)
			  : snprintf(path, sizeof(path), "%s", de->d_name);
		if (n >= (int)sizeof(path)) {
			w->err = vds_err(w->errmsg, w->errlen, -ENAMETOOLONG, "%s/%.64s...: path "
					 "longer than %d bytes", rel, de->d_name, PATH_MAX - 1);
			break;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;	/* gone since the listing */
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub < 0)
				continue;
			if (!w->files_only)
				add_dir(w, path);
			if (!w->err)
				walk_dir(w, sub, path, depth + 1);
			close(sub);
		} else {
			found(w, path, &st);
		}
	}
	closedir(d);
	return w->err;
}

/* The datastores as the planner sees them; dest_ok from maintenance and --to. */
static int plan_datastores(struct migs *g, const struct evac_opts *o, int src,
			   struct plan_ds *pd, char *err, size_t len)
{
	const struct store *s = g->store;
	int n = s->nds;

	for (int i = 0; i < n; i++) {
		pd[i] = (struct plan_ds){ 0 };
		if (!store_live(s, i) || ds_space(&s->ds[i], &pd[i].avail, &pd[i].size))
			continue;
		pd[i].dest_ok = i != src && store_open_for_new(s, i) && !o->nto;
	}
	for (size_t k = 0; k < o->nto; k++) {
		int d = store_by_name(s, o->to[k]);

		if (d < 0)
			return vds_err(err, len, -EINVAL, "unknown datastore '%s'", o->to[k]);
		if (d == src)
			return vds_err(err, len, -EINVAL, "--to %s: that is the datastore being "
				       "evacuated", o->to[k]);
		if (!store_open_for_new(s, d))
			return vds_err(err, len, -EBUSY, "--to %s: datastore %s is in maintenance",
				       o->to[k], o->to[k]);
		pd[d].dest_ok = true;
	}
	for (int i = 0; i < n; i++)
		if (pd[i].dest_ok)
			return 0;
	return vds_err(err, len, -ENOSPC, "no datastore can receive: every other one is in "
		       "maintenance or removed");
}

/* Plan r's entries (all on src); -ENOSPC leaves the unplaced ones' to NULL. */
static int plan_entries(struct migs *g, const struct plan_ds *pd, int src, double limit,
			struct evac_result *r, int *dir_dst)
{
	struct plan_item *it = calloc(r->n + 1, sizeof(*it));
	int ret;

	if (!it)
		return -ENOMEM;
	for (size_t i = 0; i < r->n; i++)
		it[i] = (struct plan_item){ r->e[i].err ? 0 : r->e[i].bytes, src, -1 };
	it[r->n] = (struct plan_item){ 0, src, -1 };	/* where new folder copies go */
	ret = plan_evacuate(pd, g->store->nds, src, it, r->n + 1, limit, &r->shortfall);
	for (size_t i = 0; i < r->n; i++) {
		r->e[i].from = g->store->ds[src].name;
		if (r->e[i].err)
			continue;
		r->e[i].to = it[i].dst >= 0 ? g->store->ds[it[i].dst].name : NULL;
		r->bytes += r->e[i].bytes;
	}
	*dir_dst = it[r->n].dst;
	free(it);
	return ret;
}

/* Queue every planned regular file: one request, all or none. */
static int queue_files(struct migs *g, struct evac_result *r, char *err, size_t len)
{
	struct mig_opts mo = { .space_check = true, .space_margin = 0 };
	const char **paths = calloc(r->n + 1, sizeof(*paths));
	int *dsts = calloc(r->n + 1, sizeof(*dsts));
	uint64_t *ids = calloc(r->n + 1, sizeof(*ids));
	size_t n = 0;
	int ret = paths && dsts && ids ? 0 : vds_err(err, len, -ENOMEM, "out of memory");

	for (size_t i = 0; !ret && i < r->n; i++)
		if (r->e[i].kind == EVAC_FILE && !r->e[i].err && r->e[i].to) {
			paths[n] = r->e[i].path;
			dsts[n++] = store_by_name(g->store, r->e[i].to);
		}
	if (!ret && n)
		ret = mig_submit(g, paths, dsts, n, &mo, ids, err, len);
	for (size_t i = 0, k = 0; !ret && i < r->n; i++)
		if (r->e[i].kind == EVAC_FILE && !r->e[i].err && r->e[i].to)
			r->e[i].id = ids[k++];
	free(paths);
	free(dsts);
	free(ids);
	return ret;
}

static void move_rest(struct migs *g, struct evac_result *r, const struct walk *w, int src)
{
	for (size_t i = 0; i < r->n; i++) {
		struct evac_entry *e = &r->e[i];
		int dst = e->to ? store_by_name(g->store, e->to) : -1, ret = 0;

		if (e->kind == EVAC_FILE || e->err || dst < 0)
			continue;
		if (e->kind == EVAC_LINKS) {
			for (size_t k = 0; k < w->ngroups; k++)
				if (w->groups[k].entry == i)
					ret = evac_move_group(g, e, &w->groups[k], src, dst);
		} else {
			ret = evac_move_special(g, e, src, dst);
		}
		if (ret)
			r->failed++;
		else
			r->moved++;
	}
}

int mig_evacuate(struct migs *g, const struct evac_opts *o, struct evac_result *r, char *err,
		 size_t len)
{
	struct store *s = g->store;
	struct plan_ds pd[VDS_MAX_DS];
	struct walk w = { .g = g, .r = r, .errmsg = err, .errlen = len };
	struct store_count left;
	int src, dir_dst = -1, ret;
	bool was_maint;

	memset(r, 0, sizeof(*r));
	src = store_by_name(s, o->name);
	if (src < 0)
		return vds_err(err, len, -ENOENT, "unknown datastore '%s'", o->name);
	was_maint = !store_open_for_new(s, src);
	if (!o->dry_run && !was_maint)	/* invariant 1 */
		mig_ds_maintenance(g, o->name, true, err, len);
	ret = plan_datastores(g, o, src, pd, err, len);
	w.src = src;
	if (!ret)
		ret = walk_dir(&w, s->ds[src].fd, ".", 0);
	for (size_t i = 0; !ret && i < w.ngroups; i++) {
		struct evac_entry *e = &r->e[w.groups[i].entry];
		struct stat st;

		/* A name outside the union (another folder's copy shadowed, say) would
		 * be left behind holding the data: the group cannot move whole. */
		if (bn_fstatat(s->ds[src].fd, e->path, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_nlink != w.groups[i].n)
			ret = vds_err(err, len, evac_set_msg(e, -EMLINK, "only %u of its %u names "
				      "are on the mount", w.groups[i].n, (unsigned)st.st_nlink),
				      "evacuate %s: the hard-linked group of %s cannot move whole: "
				      "only %u of its %u names are on the mount; nothing moved",
				      o->name, e->path, w.groups[i].n, (unsigned)st.st_nlink);
	}
	if (!ret && (ret = plan_entries(g, pd, src, o->limit, r, &dir_dst)) == -ENOSPC)
		vds_err(err, len, ret, "evacuate %s: does not fit; %.1f MiB have no room on the "
			"allowed datastores within %.0f%% fill; nothing moved", o->name,
			r->shortfall / 1048576.0, o->limit * 100);
	else if (ret == -ENOMEM)
		vds_err(err, len, ret, "out of memory");
	if (!ret && !o->dry_run)
		ret = queue_files(g, r, err, len);
	if (ret && !o->dry_run && !was_maint) {	/* refused whole: as it was */
		char ignore[64];

		mig_ds_maintenance(g, o->name, false, ignore, sizeof(ignore));
	}
	if (!ret && !o->dry_run) {
		move_rest(g, r, &w, src);
		if (dir_dst >= 0)
			r->moved += evac_sweep_dirs(g, w.dirs, w.ndirs, src, dir_dst);
		store_count(&s->ds[src], 1, &left);
		r->done = !left.files && !left.others && !left.dirs;
	}
	walk_free(&w);
	return ret;
}

int mig_rebalance(struct migs *g, const struct evac_opts *o, struct evac_result *r, char *err,
		  size_t len)
{
	struct store *s = g->store;
	struct plan_ds pd[VDS_MAX_DS];
	struct plan_item *it = NULL;
	int n = s->nds, ret = 0, moved;

	memset(r, 0, sizeof(*r));
	for (int i = 0; i < n; i++) {
		pd[i] = (struct plan_ds){ 0 };
		if (store_live(s, i) && !ds_space(&s->ds[i], &pd[i].avail, &pd[i].size))
			pd[i].dest_ok = store_open_for_new(s, i);
	}
	for (int i = 0; !ret && i < n; i++) {
		struct walk w = { .g = g, .r = r, .src = i, .files_only = true, .errmsg = err,
				  .errlen = len };
		size_t first = r->n;

		if (!store_live(s, i) || !pd[i].size ||
		    pd[i].size - pd[i].avail <= o->limit * (double)pd[i].size)
			continue;	/* only the datastores above threshold give files */
		ret = walk_dir(&w, s->ds[i].fd, ".", 0);
		for (size_t k = first; k < r->n; k++)
			r->e[k].from = s->ds[i].name;
		walk_free(&w);
	}
	if (!ret && !(it = calloc(r->n + 1, sizeof(*it))))
		ret = vds_err(err, len, -ENOMEM, "out of memory");
	for (size_t k = 0; !ret && k < r->n; k++)
		it[k] = (struct plan_item){ r->e[k].bytes, store_by_name(s, r->e[k].from), -1 };
	if (!ret && (moved = plan_rebalance(pd, n, it, r->n, o->limit, &r->still_over)) < 0)
		ret = vds_err(err, len, moved, "rebalance: threshold must be 1-100%%");
	if (!ret) {
		/* The plan lists the moves alone. */
		size_t k = 0;

		for (size_t i = 0; i < r->n; i++) {
			if (it[i].dst < 0) {
				free(r->e[i].path);
				free(r->e[i].msg);
				continue;
			}
			r->e[k] = r->e[i];
			r->e[k].to = s->ds[it[i].dst].name;
			r->bytes += r->e[k].bytes;
			k++;
		}
		r->n = k;
	}
	free(it);
	if (!ret && !o->dry_run)
		ret = queue_files(g, r, err, len);
	return ret;
}
