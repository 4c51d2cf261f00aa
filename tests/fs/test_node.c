/* Unit tests for fs/ns/node.c and the node side of fs/ns/vfile.c: how long a node
 * lives. The kernel's references (lookups, forgets), the daemon's pins, a directory
 * kept by its children, a file node kept by its open-file object; a rebind to
 * another backing inode keeps st_ino and moves the node's hash entry.
 *
 * A node is freed inside the table, so the tests watch what a freed node leaves
 * behind rather than the node: it is gone from the table (a lookup of the same
 * inode or name builds a new node, with the st_ino this lookup passes), and its
 * O_PATH fd is closed. Under ASan (CI runs the unit suite again with it) a node
 * freed too early is a use-after-free, and one never freed a leak.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsfix.h"
#include "node.h"
#include "ns.h"
#include "vfile.h"

static struct fsfix fx;
static struct node_table *t;	/* fx.ns->nodes */
static struct node *root;

static void setup(void)
{
	fsfix_init(&fx, 2);
	t = &fx.ns->nodes;
	root = &t->root;
}

static void teardown(void)
{
	fsfix_fini(&fx);
}

TestSuite(node, .init = setup, .fini = teardown);

/* A new file rel on datastore ds, returning its path in p. */
static void mkfile(int ds, const char *rel, char *p, size_t len)
{
	fsfix_path(&fx, ds, rel, p, len);
	write_file(p, "x", 1);
}

/* A kernel reference (or, with pin, a daemon one) on the file at path, as the
 * namespace takes it: through an O_PATH fd the node keeps. *fd: that fd. */
static struct node *ref_path(int ds, const char *path, bool pin, int *fd_out)
{
	struct stat st;
	int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(fstatat(fd, "", &st, AT_EMPTY_PATH), 0);
	if (fd_out)
		*fd_out = fd;
	return pin ? node_pin_file(t, ds, fd, &st) : node_ref_file(t, ds, fd, &st);
}

static void count_one(struct node *n, void *arg)
{
	(void)n;
	(*(int *)arg)++;
}

static int file_nodes(void)
{
	int n = 0;

	node_for_each_file(t, count_one, &n);
	return n;
}

static bool dir_hashed(struct node *parent, const char *name, uint64_t probe_ino)
{
	/* A lookup that builds a new node gives it probe_ino; an existing node keeps
	 * its own. The reference taken is given back at once. */
	struct node *n = node_ref_dir(t, parent, name, probe_ino);
	bool existed;

	cr_assert_not_null(n);
	existed = n->st_ino != probe_ino;
	node_forget(t, n, 1);
	return existed;
}

Test(node, one_node_per_inode_until_the_kernel_forgets_it)
{
	char p[PATH_MAX], l[PATH_MAX];
	int fd1, fd2, fd3;

	mkfile(0, "f", p, sizeof(p));
	fsfix_path(&fx, 0, "hardlink", l, sizeof(l));
	cr_assert_eq(link(p, l), 0);

	struct node *n = ref_path(0, p, false, &fd1);
	struct node *n2 = ref_path(0, p, false, &fd2);
	struct node *n3 = ref_path(0, l, false, &fd3);	/* same inode, other name */

	cr_assert_not_null(n);
	cr_assert_eq(n2, n, "a second lookup of the inode built a second node");
	cr_assert_eq(n3, n, "a hard link got a node of its own");
	cr_assert_eq(n->nlookup, 3);
	cr_assert_eq(n->fd, fd1, "the node keeps the first lookup's O_PATH fd");
	cr_assert(!fd_is_open(fd2) && !fd_is_open(fd3), "the lookups' extra fds leak");
	cr_assert_eq(n->st_ino, node_st_ino(0, file_ino(p)));
	cr_assert_eq(file_nodes(), 1);

	node_forget(t, n, 2);
	cr_assert_eq(file_nodes(), 1, "freed with a kernel reference left");
	cr_assert_eq(n->nlookup, 1);
	node_forget(t, n, 5);	/* more than it holds: the count stops at 0 */
	cr_assert_eq(file_nodes(), 0, "still in the table after the last forget");
	cr_assert(!fd_is_open(fd1), "a freed node's O_PATH fd stays open");
}

Test(node, st_ino_survives_forget_and_differs_per_datastore)
{
	char p0[PATH_MAX], p1[PATH_MAX];

	mkfile(0, "f", p0, sizeof(p0));
	mkfile(1, "f", p1, sizeof(p1));

	struct node *n = ref_path(0, p0, false, NULL);
	uint64_t ino = n->st_ino;

	node_forget(t, n, 1);
	n = ref_path(0, p0, false, NULL);
	cr_assert_eq(n->st_ino, ino, "st_ino changed across a forget and a new lookup");

	struct node *other = ref_path(1, p1, false, NULL);

	cr_assert_neq(other, n);
	cr_assert_eq(other->st_ino, node_st_ino(1, file_ino(p1)));
	cr_assert_neq(other->st_ino, node_st_ino(0, file_ino(p1)),
		      "the datastore index is not part of st_ino");
	node_forget(t, n, 1);
	node_forget(t, other, 1);
	cr_assert_eq(file_nodes(), 0);
}

Test(node, a_pin_outlives_the_kernels_references)
{
	char p[PATH_MAX];
	int fd;

	mkfile(0, "f", p, sizeof(p));

	struct node *n = ref_path(0, p, false, &fd);
	struct node *pinned = ref_path(0, p, true, NULL);

	cr_assert_eq(pinned, n);
	cr_assert_eq(n->pins, 1);
	cr_assert_eq(n->nlookup, 1, "a pin counted as a kernel reference");
	node_forget(t, n, 1);
	cr_assert_eq(file_nodes(), 1, "freed while the daemon holds a pin");
	cr_assert(fd_is_open(fd));
	cr_assert_eq(ref_path(0, p, false, NULL), n, "a pinned node left the table");
	node_forget(t, n, 1);
	node_unpin(t, n);
	cr_assert_eq(file_nodes(), 0, "the last pin let go, the node stays");
	cr_assert(!fd_is_open(fd));

	/* A pin alone (a migration of a file the kernel never looked up). */
	n = ref_path(0, p, true, &fd);
	cr_assert_eq(n->nlookup, 0);
	cr_assert_eq(file_nodes(), 1);
	node_unpin(t, n);
	cr_assert_eq(file_nodes(), 0);
	cr_assert(!fd_is_open(fd));
}

Test(node, a_directory_lives_while_a_child_does)
{
	char path[PATH_MAX];
	struct node *a = node_ref_dir(t, root, "a", 100);
	struct node *b = node_ref_dir(t, a, "b", 200);
	struct node *c = node_ref_dir(t, b, "c", 300);

	cr_assert(a && b && c);
	cr_assert_eq(root->children, 1);
	cr_assert_eq(a->children, 1);
	/* The kernel forgets the parents first (it may: they are only ancestors). */
	node_forget(t, a, 1);
	node_forget(t, b, 1);
	cr_assert_eq(root->children, 1, "a parent with a live child was freed");
	cr_assert_eq(node_dir_path(t, c, path, sizeof(path)), 0);
	cr_assert_str_eq(path, "a/b/c", "path built through freed parents");
	cr_assert_eq(node_child_path(t, c, "disk", path, sizeof(path)), 0);
	cr_assert_str_eq(path, "a/b/c/disk");
	cr_assert(dir_hashed(root, "a", 999), "a kept-alive parent left the table");
	cr_assert(dir_hashed(a, "b", 999));

	node_forget(t, c, 1);	/* the last reason for all three */
	cr_assert_eq(root->children, 0, "the chain of parents was not freed");
	cr_assert(!dir_hashed(root, "a", 999), "a freed directory is still found");
	cr_assert_eq(root->nlookup, 1, "the root is never forgotten");
}

Test(node, an_unhashed_directory_lives_on_unseen)
{
	char path[PATH_MAX];
	struct node *a = node_ref_dir(t, root, "a", 100);

	node_unhash_dir(t, root, "a");	/* removed (rmdir) or replaced */
	struct node *a2 = node_ref_dir(t, root, "a", 101);

	cr_assert_neq(a2, a, "a lookup after the unhash found the old node");
	cr_assert_eq(a2->st_ino, 101);
	cr_assert_eq(root->children, 2);
	cr_assert_eq(node_dir_path(t, a, path, sizeof(path)), 0);
	cr_assert_str_eq(path, "a");
	node_forget(t, a, 1);
	cr_assert_eq(root->children, 1);
	cr_assert(dir_hashed(root, "a", 999), "forgetting the old node unhashed the new one");
	node_forget(t, a2, 1);
	cr_assert_eq(root->children, 0);
}

Test(node, a_moved_directory_lets_its_old_parent_go)
{
	char path[PATH_MAX];
	struct node *a = node_ref_dir(t, root, "a", 100);
	struct node *b = node_ref_dir(t, a, "b", 200);
	struct node *x = node_ref_dir(t, root, "x", 300);	/* replaced by the move */

	node_forget(t, a, 1);	/* a lives on through b only */
	cr_assert_eq(node_move_dir(t, a, "b", root, "x"), 0);
	cr_assert_eq(root->children, 2, "b under the root, x unhashed but referenced");
	cr_assert(!dir_hashed(root, "a", 999), "the old parent was not freed");
	cr_assert_eq(node_dir_path(t, b, path, sizeof(path)), 0);
	cr_assert_str_eq(path, "x");
	cr_assert_eq(node_ref_dir(t, root, "x", 999), b, "the new name finds the moved node");
	node_forget(t, b, 2);
	node_forget(t, x, 1);
	cr_assert_eq(root->children, 0);
}

Test(node, a_path_too_long_is_refused)
{
	char name[200], path[64];
	struct node *a;

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	a = node_ref_dir(t, root, name, 5);
	cr_assert_eq(node_dir_path(t, a, path, sizeof(path)), -ENAMETOOLONG);
	cr_assert_eq(node_child_path(t, root, name, path, sizeof(path)), -ENAMETOOLONG);
	cr_assert_eq(node_dir_path(t, root, path, sizeof(path)), 0);
	cr_assert_str_eq(path, ".");
	node_forget(t, a, 1);
}

Test(node, a_file_node_lives_while_its_vfile_does)
{
	char p[PATH_MAX];
	struct node *n;
	struct stat st;

	mkfile(0, "f", p, sizeof(p));
	cr_assert_eq(ns_entry(fx.ns, root, "f", &n, &st), 0);
	cr_assert_eq(n->nlookup, 1);

	/* A reference of the route's owner (a migration). */
	struct vfile *vf = vfile_get(fx.ns, n);

	cr_assert_not_null(vf);
	cr_assert_eq(vfile_get(fx.ns, n), vf, "a second vfile for one node");
	cr_assert_eq(vf->refs, 2);
	vfile_put(fx.ns, vf);
	node_forget(t, n, 1);
	cr_assert_eq(file_nodes(), 1, "the node went while its vfile lives");
	cr_assert_eq(n->vf, vf);
	vfile_put(fx.ns, vf);
	cr_assert_eq(file_nodes(), 0, "the last vfile reference did not free the forgotten node");

	/* An open handle is a reference too. */
	struct vhandle *h;

	cr_assert_eq(ns_entry(fx.ns, root, "f", &n, &st), 0);
	cr_assert_eq(vfile_open(fx.ns, n, O_RDWR, &h), 0);
	node_forget(t, n, 1);
	cr_assert_eq(file_nodes(), 1, "the node went under an open handle");
	cr_assert_eq(vfile_write(h, "y", 1, 0), 1);
	vfile_release(fx.ns, h);
	cr_assert_eq(file_nodes(), 0);

	/* Not forgotten: the node stays when the vfile goes, without it. */
	cr_assert_eq(ns_entry(fx.ns, root, "f", &n, &st), 0);
	vf = vfile_get(fx.ns, n);
	vfile_put(fx.ns, vf);
	cr_assert_eq(file_nodes(), 1);
	cr_assert_null(n->vf, "a freed vfile is still the node's");
	cr_assert_null(vfile_hold(fx.ns, n), "vfile_hold made a vfile for a file not open");
	node_forget(t, n, 1);
	cr_assert_eq(file_nodes(), 0);
}

Test(node, rebind_keeps_st_ino_and_moves_the_hash_entry)
{
	char p[PATH_MAX], q[PATH_MAX];
	struct stat qst;
	int pfd, qfd;

	mkfile(0, "f", p, sizeof(p));
	mkfile(1, "f", q, sizeof(q));	/* the copy on the destination */

	struct node *n = ref_path(0, p, false, &pfd);
	uint64_t st_ino = n->st_ino;

	wrate_note(&n->wrate, 1 << 20);
	qfd = open(q, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	cr_assert_geq(qfd, 0);
	cr_assert_eq(fstatat(qfd, "", &qst, AT_EMPTY_PATH), 0);

	int old = node_rebind_file(t, n, 1, qfd, &qst);

	cr_assert_eq(old, pfd, "the old O_PATH fd is not handed back");
	cr_assert(fd_is_open(pfd), "the caller closes the old fd, not the rebind");
	close(pfd);
	cr_assert_eq(n->st_ino, st_ino, "st_ino changed with the backing file");
	cr_assert_eq(n->ds, 1);
	cr_assert_eq(n->fd, qfd);
	cr_assert(n->bdev == qst.st_dev && n->bino == qst.st_ino);
	cr_assert_eq(file_nodes(), 1);

	/* The table finds the node by its new inode, and no longer by the old one. */
	cr_assert_eq(ref_path(1, q, false, NULL), n, "a lookup of the new inode missed the node");
	cr_assert_gt(node_write_rate(t, qst.st_dev, qst.st_ino), 0,
		     "the write rate did not follow the node");

	struct node *fresh = ref_path(0, p, false, NULL);

	cr_assert_neq(fresh, n, "the old inode still finds the rebound node");
	cr_assert_eq(fresh->st_ino, st_ino, "same inode, same datastore, same number");
	cr_assert_eq(node_write_rate(t, fresh->bdev, fresh->bino), 0);
	cr_assert_eq(file_nodes(), 2);
	node_forget(t, fresh, 1);
	node_forget(t, n, 2);
	cr_assert_eq(file_nodes(), 0);
	cr_assert(!fd_is_open(qfd));
}

/* Unlinked while open: the node is the inode, not the name. I/O and stat by node
 * go on (nlink 0), a lookup of the name misses it, a new file of that name is
 * another node, and the last release after the forget frees it. */
Test(node, unlink_while_open_keeps_the_node_until_forget_and_release)
{
	char p[PATH_MAX], buf[8];
	struct node *n, *n2;
	struct vhandle *h;
	struct stat st;

	mkfile(0, "f", p, sizeof(p));
	cr_assert_eq(ns_entry(fx.ns, root, "f", &n, &st), 0);
	cr_assert_eq(vfile_open(fx.ns, n, O_RDWR, &h), 0);
	cr_assert_eq(unlink(p), 0);

	cr_assert_eq(vfile_write(h, "after", 5, 0), 5);
	cr_assert_eq(vfile_read(h, buf, 5, 0), 5);
	cr_assert(!memcmp(buf, "after", 5));
	cr_assert_eq(ns_stat_node(fx.ns, n, &st), 0, "stat by node after the unlink");
	cr_assert_eq(st.st_nlink, 0);
	cr_assert_eq(st.st_size, 5);
	cr_assert_eq(ns_entry(fx.ns, root, "f", &n2, &st), -ENOENT);

	mkfile(0, "f", p, sizeof(p));	/* the name again: another inode */
	cr_assert_eq(ns_entry(fx.ns, root, "f", &n2, &st), 0);
	cr_assert_neq(n2, n, "the new file got the unlinked one's node");
	cr_assert_neq(n2->st_ino, n->st_ino);
	cr_assert_eq(file_nodes(), 2);
	node_forget(t, n2, 1);

	node_forget(t, n, 1);
	cr_assert_eq(file_nodes(), 1, "forgotten while still open: the node went");
	cr_assert_eq(vfile_read(h, buf, 5, 0), 5);
	vfile_release(fx.ns, h);
	cr_assert_eq(file_nodes(), 0, "the last release did not free the unlinked node");
}
