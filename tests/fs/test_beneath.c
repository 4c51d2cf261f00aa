/* Unit tests for fs/store/beneath.c: paths under a datastore never resolve outside it,
 * through openat2 and through the component walk used where openat2 is missing. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "beneath.h"

static char top[64];
static int ds;

/* top/ds/{vm/disk, link -> ../outside, vm/inner -> disk}, top/outside/secret */
static void setup(void)
{
	char p[512];

	snprintf(top, sizeof(top), "/tmp/vdsfs-beneath-XXXXXX");
	cr_assert_not_null(mkdtemp(top));
	snprintf(p, sizeof(p), "mkdir -p %s/ds/vm %s/outside && touch %s/ds/vm/disk %s/outside/secret"
		 " && ln -s ../outside %s/ds/link && ln -s disk %s/ds/vm/inner",
		 top, top, top, top, top, top);
	cr_assert_eq(system(p), 0);
	snprintf(p, sizeof(p), "%s/ds", top);
	ds = open(p, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(ds, 0);
}

static void teardown(void)
{
	char p[512];

	close(ds);
	snprintf(p, sizeof(p), "rm -rf %s", top);
	cr_assert_eq(system(p), 0);
}

TestSuite(beneath, .init = setup, .fini = teardown);

typedef int (*open_fn)(int, const char *, int, mode_t);

static int open_errno(open_fn fn, const char *path, int flags)
{
	int fd = fn(ds, path, flags | O_CLOEXEC, 0);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return errno;
}

static void check_open(open_fn fn)
{
	cr_assert_eq(open_errno(fn, "vm/disk", O_RDONLY), 0);
	cr_assert_eq(open_errno(fn, "link/secret", O_RDONLY), ELOOP);
	cr_assert_neq(open_errno(fn, "vm/../../outside/secret", O_RDONLY), 0);
	cr_assert_eq(open_errno(fn, "vm/inner", O_RDONLY), ELOOP);	/* last one too */
	cr_assert_eq(open_errno(fn, "vm/inner", O_PATH | O_NOFOLLOW), 0);
	cr_assert_eq(open_errno(fn, "link/new", O_WRONLY | O_CREAT), ELOOP);
}

Test(beneath, openat2_refuses_ways_out) { check_open(bn_open); }
Test(beneath, walk_refuses_ways_out) { check_open(bn_walk_open); }

Test(beneath, at_calls_act_on_the_last_component_inside)
{
	struct stat st;
	char p[512];

	cr_assert_eq(bn_fstatat(ds, "vm/disk", &st, AT_SYMLINK_NOFOLLOW), 0);
	cr_assert_eq(bn_fstatat(ds, "link/secret", &st, 0), -1);
	cr_assert_eq(errno, ELOOP);
	cr_assert_eq(bn_mkdirat(ds, "link/d", 0755), -1);
	cr_assert_eq(bn_unlinkat(ds, "link/secret", 0), -1);
	cr_assert_eq(bn_renameat2(ds, "vm/disk", ds, "link/disk", 0), -1);
	cr_assert_eq(bn_fstatat(ds, "..", &st, 0), -1);
	cr_assert_eq(errno, EXDEV);
	snprintf(p, sizeof(p), "%s/outside/secret", top);
	cr_assert_eq(access(p, F_OK), 0, "the outside file is untouched");
	cr_assert_eq(bn_renameat2(ds, "vm/disk", ds, "vm/disk2", 0), 0);
	cr_assert_eq(bn_fstatat(ds, "vm/disk2", &st, 0), 0);
}
