/* request.c - what a migrate request names, turned into the files it moves.
 *
 * A request names paths and destinations; a folder means every regular file below
 * it, across every datastore's copy of the folder. The list is expanded, sorted and
 * deduplicated here, then checked and queued whole by mig_submit (registry.c), or
 * refused whole. Symlinks and special files are not migrated and are passed over.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "errmsg.h"
#include "mig_int.h"
#include "paths.h"

#define MAX_DEPTH	64	/* directory levels below a named folder */

/* The files a request names, in the order named: directories expanded, sorted,
 * each path once. Grows as needed: a folder may hold any number of files. */
struct filelist {
	char **path;
	int *dst;
	size_t n, cap;
};

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
static int list_dedup(const struct store *s, struct filelist *l, char *err, size_t len)
{
	struct named *sorted = malloc((l->n ? l->n : 1) * sizeof(*sorted));
	bool *drop = calloc(l->n ? l->n : 1, sizeof(*drop));
	size_t k = 0;
	int ret = sorted && drop ? 0 : vds_err(err, len, -ENOMEM, "out of memory");

	for (size_t i = 0; !ret && i < l->n; i++)
		sorted[i] = (struct named){ l->path[i], i };
	if (!ret)
		qsort(sorted, l->n, sizeof(*sorted), cmp_named);
	for (size_t i = 1; !ret && i < l->n; i++) {
		if (strcmp(sorted[i].path, sorted[i - 1].path))
			continue;
		if (l->dst[sorted[i].i] != l->dst[sorted[i - 1].i])
			ret = vds_err(err, len, -EINVAL, "%s is named twice, to %s and to %s",
				      sorted[i].path, s->ds[l->dst[sorted[i - 1].i]].name,
				      s->ds[l->dst[sorted[i].i]].name);
		drop[sorted[i].i] = true;
		sorted[i].i = sorted[i - 1].i;	/* a third name compares with the first */
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
	free(sorted);
	free(drop);
	return ret;
}

/* Names in every copy of the union directory rel, sorted, possibly repeated. */
static int read_names(const struct store *s, const char *rel, char ***out, size_t *count)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	int ret = 0;

	for (int i = 0; !ret && i < s->nds; i++) {
		int fd = !store_live(s, i) ? -1 :
			 bn_open(s->ds[i].fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
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
	if (!ret && n)
		qsort(names, n, sizeof(*names), cmp_str);
	*out = names;
	*count = n;
	return ret;
}

/* Every regular file below rel, across all copies of the union directory, sorted;
 * a name that vanished since the directory was read is no longer part of it. */
static int expand_dir(struct migs *g, const char *rel, int dst, struct filelist *l, int depth,
		      char *err, size_t len)
{
	char **names, child[PATH_MAX];
	size_t n;
	int ret;

	if (depth > MAX_DEPTH)
		return vds_err(err, len, -ELOOP, "%s: folders nested deeper than %d levels", rel,
			       MAX_DEPTH);
	ret = read_names(g->store, rel, &names, &n);
	if (ret)
		vds_err(err, len, ret, "%s: reading the folder: %s", rel, strerror(-ret));
	for (size_t i = 0; !ret && i < n; i++) {
		struct stat st;
		int ds;

		if (i && !strcmp(names[i], names[i - 1]))
			continue;
		if (snprintf(child, sizeof(child), "%s/%s", rel, names[i]) >= (int)sizeof(child)) {
			ret = vds_err(err, len, -ENAMETOOLONG, "%s/%.64s...: path longer than %d bytes",
				      rel, names[i], PATH_MAX - 1);
			break;
		}
		ds = ns_find_beneath(g->ns, child, &st);
		if (ds == -ENOENT || ds == -EINVAL)	/* gone, or a symlink */
			continue;
		if (ds < 0)
			ret = vds_err(err, len, ds, "%.400s: %s", child, strerror(-ds));
		else if (S_ISDIR(st.st_mode))
			ret = expand_dir(g, child, dst, l, depth + 1, err, len);
		else if (S_ISREG(st.st_mode) && list_add(l, child, dst))
			ret = vds_err(err, len, -ENOMEM, "out of memory listing %s", rel);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return ret;
}

static int collect_move(struct migs *g, const struct mig_move *mv, struct filelist *l,
			char *err, size_t len)
{
	struct stat st;
	int dst;

	if (!vds_path_sane(mv->path))
		return vds_err(err, len, -EINVAL, "'%s' is not a path inside the mount", mv->path);
	dst = store_by_name(g->store, mv->to);
	if (dst < 0)
		return vds_err(err, len, -EINVAL, "unknown datastore '%s'", mv->to);
	if (ns_find_beneath(g->ns, mv->path, &st) >= 0 && S_ISDIR(st.st_mode))
		return expand_dir(g, mv->path, dst, l, 0, err, len);
	if (list_add(l, mv->path, dst))
		return vds_err(err, len, -ENOMEM, "out of memory");
	return 0;
}

int mig_request(struct migs *g, const struct mig_move *mv, size_t n, const struct mig_opts *o,
		uint64_t **ids, size_t *nids, char *err, size_t len)
{
	struct filelist l = { 0 };
	int ret = 0;

	*ids = NULL;
	*nids = 0;
	for (size_t i = 0; !ret && i < n; i++)
		ret = collect_move(g, &mv[i], &l, err, len);
	if (!ret)
		ret = list_dedup(g->store, &l, err, len);
	if (!ret && !l.n)
		ret = vds_err(err, len, -ENOENT, "migrate: no regular file to move");
	if (!ret && !(*ids = calloc(l.n, sizeof(**ids))))
		ret = vds_err(err, len, -ENOMEM, "out of memory");
	if (!ret)
		ret = mig_submit(g, (const char *const *)l.path, l.dst, l.n, o, *ids, err, len);
	if (!ret)
		*nids = l.n;
	else {
		free(*ids);
		*ids = NULL;
	}
	list_free(&l);
	return ret;
}

int mig_where(struct migs *g, const char *path, struct mig_where *w)
{
	struct stat st;
	int ds = ns_find_beneath(g->ns, path, &st);

	if (ds < 0)
		return ds;
	w->datastore = g->store->ds[ds].name;
	w->is_dir = S_ISDIR(st.st_mode);
	w->migration = mig_of_path(g, path);
	return 0;
}

bool mig_id_used(struct migs *g, uint64_t id)
{
	bool used;

	migs_lock(g);
	used = id < g->next_id;
	migs_unlock(g);
	return used;
}
