/* Unit tests for fs/store/datastore.c: the layout rules between datastores and mountpoint. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datastore.h"

Test(layout, path_within)
{
	cr_assert(path_within("/a", "/a"));
	cr_assert(path_within("/a", "/a/b"));
	cr_assert_not(path_within("/a", "/ab"));
	cr_assert_not(path_within("/a/b", "/a"));
	cr_assert(path_within("/", "/anything"));
}

static int check(int n, char *const *paths, const char *mnt, char *err)
{
	const char *names[] = { "a", "b", "c" };

	return ds_check_layout(paths, names, n, mnt, err, 256);
}

Test(layout, distinct_is_fine)
{
	char *p[] = { "/d/a", "/d/b", "/e" };
	char err[256];

	cr_assert_eq(check(3, p, "/mnt", err), 0);
}

Test(layout, refusals)
{
	char err[256];
	char *same[] = { "/d/a", "/d/a" };
	char *nested[] = { "/d", "/d/sub" };
	char *under_mnt[] = { "/mnt/x" };
	char *over_mnt[] = { "/srv" };

	cr_assert_eq(check(2, same, "/mnt", err), -EINVAL);
	cr_assert(strstr(err, "same directory"), "%s", err);
	cr_assert_eq(check(2, nested, "/mnt", err), -EINVAL);
	cr_assert(strstr(err, "datastore b (/d/sub) is inside datastore a (/d)"), "%s", err);
	cr_assert_eq(check(1, under_mnt, "/mnt", err), -EINVAL);
	cr_assert(strstr(err, "inside the mountpoint"), "%s", err);
	cr_assert_eq(check(1, over_mnt, "/srv/mnt", err), -EINVAL);
	cr_assert(strstr(err, "mountpoint /srv/mnt is inside datastore a"), "%s", err);
}

Test(layout, canonicalize_resolves_and_refuses)
{
	char tmpl[] = "/tmp/vds-layout-XXXXXX";
	char *dir = mkdtemp(tmpl), *out = NULL, err[256], path[512], file[512];

	cr_assert_not_null(dir);
	snprintf(path, sizeof(path), "%s/./", dir);
	cr_assert_eq(ds_canonicalize("a", path, &out, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(out, dir);
	free(out);
	snprintf(file, sizeof(file), "%s/f", dir);
	fclose(fopen(file, "w"));
	cr_assert_eq(ds_canonicalize("a", file, &out, err, sizeof(err)), -ENOTDIR);
	cr_assert(strstr(err, "not a directory"));
	snprintf(path, sizeof(path), "%s/missing", dir);
	cr_assert_eq(ds_canonicalize("a", path, &out, err, sizeof(err)), -ENOENT);
	unlink(file);
	rmdir(dir);
}

Test(layout, open_creates_state_dir_and_locks)
{
	char tmpl[] = "/tmp/vds-layout-XXXXXX";
	char *dir = mkdtemp(tmpl), err[256], path[512];
	struct datastore a, b;

	cr_assert_eq(ds_open(&a, "a", dir, err, sizeof(err)), 0, "%s", err);
	snprintf(path, sizeof(path), "%s/.vdsfs", dir);
	cr_assert_eq(access(path, F_OK), 0);
	cr_assert_eq(ds_open(&b, "b", dir, err, sizeof(err)), -EBUSY);
	cr_assert(strstr(err, "already served by another vdsfs"), "%s", err);
	ds_close(&b);
	ds_close(&a);
	cr_assert_eq(ds_open(&b, "b", dir, err, sizeof(err)), 0, "lock not released: %s", err);
	ds_close(&b);
	snprintf(path, sizeof(path), "%s/.vdsfs/lock", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/.vdsfs", dir);
	rmdir(path);
	rmdir(dir);
}
