/* node.c - the node table (see node.h for the model and the locking rule).
 *
 * Nodes are freed when the kernel has forgotten them (nlookup == 0) and, for
 * directories, when no live child still points at them as parent; a child keeps its
 * parent alive so that path building never follows a freed pointer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lock.h"
#include "node.h"

static void maybe_free_locked(struct node_table *t, struct node *n);

static unsigned hash_dir(const struct node *parent, const char *name)
{
	uint64_t h = (uintptr_t)parent * 0x9E3779B97F4A7C15ull;

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 0x100000001B3ull;
	return (unsigned)(h ^ (h >> 32)) & (NODE_BUCKETS - 1);
}

static unsigned hash_file(dev_t dev, ino_t ino)
{
	uint64_t h = ((uint64_t)dev * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)ino * 0xC2B2AE3D27D4EB4Full);

	return (unsigned)(h ^ (h >> 29)) & (NODE_BUCKETS - 1);
}

void node_table_init(struct node_table *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	t->root.is_dir = true;
	t->root.hashed = true;
	t->root.nlookup = 1;
	t->root.fd = -1;
	t->root.st_ino = 1;
}

static void node_free(struct node *n)
{
	if (!n->is_dir && n->fd >= 0)
		close(n->fd);
	free(n->name);
	free(n);
}

void node_table_destroy(struct node_table *t)
{
	for (unsigned b = 0; b < NODE_BUCKETS; b++) {
		for (struct node *n = t->dirs[b], *next; n; n = next) {
			next = n->hnext;
			node_free(n);
		}
		for (struct node *n = t->files[b], *next; n; n = next) {
			next = n->hnext;
			node_free(n);
		}
	}
	pthread_mutex_destroy(&t->lock);
}

struct node *node_of(struct node_table *t, uint64_t id)
{
	return id == NODE_ROOT_ID ? &t->root : (struct node *)(uintptr_t)id;
}

uint64_t node_id(struct node_table *t, struct node *n)
{
	return n == &t->root ? NODE_ROOT_ID : (uint64_t)(uintptr_t)n;
}

static int dir_path_locked(struct node *dir, char *buf, size_t len)
{
	size_t pos = len - 1;

	buf[pos] = 0;
	for (struct node *n = dir; n->parent; n = n->parent) {
		size_t l = strlen(n->name);

		if (l + 1 > pos)
			return -ENAMETOOLONG;
		pos -= l;
		memcpy(buf + pos, n->name, l);
		buf[--pos] = '/';
	}
	if (pos == len - 1) {
		strcpy(buf, ".");
		return 0;
	}
	memmove(buf, buf + pos + 1, len - pos - 1);
	return 0;
}

/* Relative path of a directory node: "." for the root, "a/b" below it. */
int node_dir_path(struct node_table *t, struct node *dir, char *buf, size_t len)
{
	lk_lock(&t->lock, LK_NODES);
	int ret = dir_path_locked(dir, buf, len);
	lk_unlock(&t->lock, LK_NODES);
	return ret;
}

int node_child_path(struct node_table *t, struct node *dir, const char *name, char *buf,
		    size_t len)
{
	int ret = node_dir_path(t, dir, buf, len);
	size_t l;

	if (ret)
		return ret;
	if (!strcmp(buf, ".")) {
		if (strlen(name) >= len)
			return -ENAMETOOLONG;
		strcpy(buf, name);
		return 0;
	}
	l = strlen(buf);
	if (l + 1 + strlen(name) >= len)
		return -ENAMETOOLONG;
	buf[l] = '/';
	strcpy(buf + l + 1, name);
	return 0;
}

static struct node *find_dir(struct node_table *t, struct node *parent, const char *name)
{
	for (struct node *n = t->dirs[hash_dir(parent, name)]; n; n = n->hnext)
		if (n->parent == parent && !strcmp(n->name, name))
			return n;
	return NULL;
}

static struct node *new_dir_locked(struct node_table *t, struct node *parent,
				   const char *name, uint64_t st_ino)
{
	struct node *n = calloc(1, sizeof(*n));
	unsigned b = hash_dir(parent, name);

	if (!n || !(n->name = strdup(name))) {
		free(n);
		return NULL;
	}
	n->is_dir = true;
	n->hashed = true;
	n->fd = -1;
	n->parent = parent;
	n->st_ino = st_ino;
	parent->children++;
	n->hnext = t->dirs[b];
	t->dirs[b] = n;
	return n;
}

struct node *node_ref_dir(struct node_table *t, struct node *parent, const char *name,
			  uint64_t st_ino)
{
	struct node *n;

	lk_lock(&t->lock, LK_NODES);
	n = find_dir(t, parent, name);
	if (!n)
		n = new_dir_locked(t, parent, name, st_ino);
	if (n)
		n->nlookup++;
	lk_unlock(&t->lock, LK_NODES);
	return n;
}

static struct node *ref_file(struct node_table *t, int ds, int opath_fd,
			     const struct stat *st, bool pin);

/* Takes ownership of opath_fd (closed if an existing node already covers the inode). */
struct node *node_ref_file(struct node_table *t, int ds, int opath_fd, const struct stat *st)
{
	return ref_file(t, ds, opath_fd, st, false);
}

/* Like node_ref_file, but the reference is the daemon's own, not the kernel's. */
struct node *node_pin_file(struct node_table *t, int ds, int opath_fd, const struct stat *st)
{
	return ref_file(t, ds, opath_fd, st, true);
}

void node_unpin(struct node_table *t, struct node *n)
{
	lk_lock(&t->lock, LK_NODES);
	n->pins--;
	maybe_free_locked(t, n);
	lk_unlock(&t->lock, LK_NODES);
}

static struct node *ref_file(struct node_table *t, int ds, int opath_fd,
			     const struct stat *st, bool pin)
{
	unsigned b = hash_file(st->st_dev, st->st_ino);
	struct node *n;

	lk_lock(&t->lock, LK_NODES);
	for (n = t->files[b]; n; n = n->hnext)
		if (n->bdev == st->st_dev && n->bino == st->st_ino)
			break;
	if (n) {
		close(opath_fd);
	} else if ((n = calloc(1, sizeof(*n)))) {
		n->fd = opath_fd;
		n->ds = ds;
		n->bdev = st->st_dev;
		n->bino = st->st_ino;
		n->st_ino = node_st_ino(ds, st->st_ino);
		n->hashed = true;
		n->hnext = t->files[b];
		t->files[b] = n;
	} else {
		close(opath_fd);
	}
	if (n && pin)
		n->pins++;
	else if (n)
		n->nlookup++;
	lk_unlock(&t->lock, LK_NODES);
	return n;
}

static void unlink_chain(struct node **head, struct node *n)
{
	for (struct node **pp = head; *pp; pp = &(*pp)->hnext)
		if (*pp == n) {
			*pp = n->hnext;
			return;
		}
}

static void unhash_locked(struct node_table *t, struct node *n)
{
	if (!n->hashed)
		return;
	if (n->is_dir)
		unlink_chain(&t->dirs[hash_dir(n->parent, n->name)], n);
	else
		unlink_chain(&t->files[hash_file(n->bdev, n->bino)], n);
	n->hashed = false;
}

/* Frees n, and then each parent left with no reason to live. */
static void maybe_free_locked(struct node_table *t, struct node *n)
{
	while (n != &t->root && n->nlookup == 0 && n->children == 0 && !n->vf && !n->pins) {
		struct node *parent = n->is_dir ? n->parent : NULL;

		unhash_locked(t, n);
		node_free(n);
		if (!parent)
			return;
		parent->children--;
		n = parent;
	}
}

void node_forget(struct node_table *t, struct node *n, uint64_t nlookup)
{
	lk_lock(&t->lock, LK_NODES);
	n->nlookup = nlookup > n->nlookup ? 0 : n->nlookup - nlookup;
	maybe_free_locked(t, n);
	lk_unlock(&t->lock, LK_NODES);
}

/* A removed or replaced directory: later lookups of that name must build a new node;
 * the old one lives on (unhashed) until the kernel forgets it. */
void node_unhash_dir(struct node_table *t, struct node *parent, const char *name)
{
	lk_lock(&t->lock, LK_NODES);
	struct node *n = find_dir(t, parent, name);
	if (n)
		unhash_locked(t, n);
	lk_unlock(&t->lock, LK_NODES);
}

int node_move_dir(struct node_table *t, struct node *parent, const char *name,
		  struct node *newparent, const char *newname)
{
	char *dup = strdup(newname);
	struct node *n, *old;

	if (!dup)
		return -ENOMEM;
	lk_lock(&t->lock, LK_NODES);
	old = find_dir(t, newparent, newname);
	if (old)
		unhash_locked(t, old);
	n = find_dir(t, parent, name);
	if (n) {
		unhash_locked(t, n);
		free(n->name);
		n->name = dup;
		dup = NULL;
		n->parent->children--;
		n->parent = newparent;
		newparent->children++;
		unsigned b = hash_dir(newparent, n->name);
		n->hnext = t->dirs[b];
		t->dirs[b] = n;
		n->hashed = true;
		maybe_free_locked(t, parent);
	}
	lk_unlock(&t->lock, LK_NODES);
	free(dup);
	return 0;
}

/* A migration moved the file: point the node at its new backing inode, keeping
 * st_ino. Returns the old O_PATH fd for the caller to close once no I/O can use it. */
uint64_t node_write_rate(struct node_table *t, dev_t dev, ino_t ino)
{
	uint64_t rate = 0;

	lk_lock(&t->lock, LK_NODES);
	for (struct node *n = t->files[hash_file(dev, ino)]; n; n = n->hnext)
		if (n->bdev == dev && n->bino == ino) {
			rate = wrate_get(&n->wrate);
			break;
		}
	lk_unlock(&t->lock, LK_NODES);
	return rate;
}

int node_rebind_file(struct node_table *t, struct node *n, int ds, int opath_fd,
		     const struct stat *st)
{
	int old;

	lk_lock(&t->lock, LK_NODES);
	bool was_hashed = n->hashed;
	unhash_locked(t, n);
	old = n->fd;
	n->fd = opath_fd;
	n->ds = ds;
	n->bdev = st->st_dev;
	n->bino = st->st_ino;
	if (was_hashed) {
		unsigned b = hash_file(st->st_dev, st->st_ino);

		n->hnext = t->files[b];
		t->files[b] = n;
		n->hashed = true;
	}
	lk_unlock(&t->lock, LK_NODES);
	return old;
}

/* Daemon teardown only (no other thread left): visit every file node. */
void node_for_each_file(struct node_table *t, void (*fn)(struct node *n, void *arg), void *arg)
{
	for (unsigned b = 0; b < NODE_BUCKETS; b++)
		for (struct node *n = t->files[b]; n; n = n->hnext)
			fn(n, arg);
}
