/* Unit tests for fs/store/store.c: the datastore list at runtime (store.h's rules). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

static char top[64];
static struct store *s;

static void setup(void)
{
	snprintf(top, sizeof(top), "/tmp/vds-store-XXXXXX");
	cr_assert(mkdtemp(top));
	s = calloc(1, sizeof(*s));
	s->create_named = -1;
	s->mountpoint = "/nonexistent-mnt";
}

static void teardown(void)
{
	char cmd[128];

	store_close(s);
	free(s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	cr_assert_eq(system(cmd), 0);
}

/* Add datastore name at top/name (made if mkdir); its index or -errno. */
static int add(const char *name, bool mk, char *err)
{
	char path[128], *canon = NULL;
	int ret;

	snprintf(path, sizeof(path), "%s/%s", top, name);
	if (mk)
		mkdir(path, 0755);
	ret = ds_canonicalize(name, path, &canon, err, 256);
	if (!ret)
		ret = store_add(s, name, canon, err, 256);
	free(canon);
	return ret;
}

TestSuite(store, .init = setup, .fini = teardown);

Test(store, add_appends_and_checks_layout)
{
	char err[256];

	cr_assert_eq(add("a", true, err), 0, "%s", err);
	cr_assert_eq(add("b", true, err), 1, "%s", err);
	cr_assert_eq(s->nds, 2);
	cr_assert_eq(store_by_name(s, "b"), 1);
	cr_assert_eq(add("a/inner", true, err), -EINVAL);
	cr_assert(strstr(err, "is inside datastore a"), "%s", err);
	cr_assert_eq(add("missing", false, err), -ENOENT);
	cr_assert_eq(s->nds, 2, "a refused add takes no slot");
}

Test(store, remove_keeps_the_slot_and_is_skipped)
{
	char err[256];

	cr_assert_eq(add("a", true, err), 0);
	cr_assert_eq(add("b", true, err), 1);
	store_remove(s, 0);
	cr_assert_not(store_live(s, 0));
	cr_assert_eq(store_by_name(s, "a"), -1);
	cr_assert_eq(s->ds[0].fd >= 0, true, "its fds stay open until store_close");
	cr_assert_eq(store_pick(s), 1);
	/* Its lock is released: the directory can be added again, in a new slot. */
	cr_assert_eq(add("a", false, err), 2, "%s", err);
	cr_assert_eq(store_by_name(s, "a"), 2);
	cr_assert_str_eq(s->ds[0].name, "a", "names of old slots stay as they were");
}

Test(store, maintenance_keeps_placement_off)
{
	char err[256];

	cr_assert_eq(add("a", true, err), 0);
	cr_assert_eq(add("b", true, err), 1);
	s->create = VDS_CREATE_FF;
	cr_assert_eq(store_pick(s), 0);
	store_set_maint(s, 0, true);
	cr_assert_not(store_open_for_new(s, 0));
	cr_assert(store_live(s, 0));
	cr_assert_eq(store_pick(s), 1);
	store_set_maint(s, 1, true);
	cr_assert_eq(store_pick(s), -ENOSPC);
	store_set_maint(s, 0, false);
	cr_assert_eq(store_pick(s), 0);
}

Test(store, the_slot_bound_is_an_error)
{
	char err[256], name[16];
	int i;

	for (i = 0; i < VDS_MAX_DS; i++) {
		snprintf(name, sizeof(name), "d%d", i);
		cr_assert_eq(add(name, true, err), i, "%s", err);
		if (i % 2)
			store_remove(s, i);
	}
	cr_assert_eq(add("one-more", true, err), -ENOSPC);
	cr_assert(strstr(err, "at most 64 datastore slots"), "%s", err);
}

Test(store, count_stops_at_its_limit)
{
	char err[256], path[160];
	struct store_count c;

	cr_assert_eq(add("a", true, err), 0);
	store_count(&s->ds[0], 0, &c);
	cr_assert_eq(c.files + c.others + c.dirs, 0, ".vdsfs/ is not counted");
	snprintf(path, sizeof(path), "%s/a/dir", top);
	mkdir(path, 0755);
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/a/dir/f%d", top, i);
		close(open(path, O_CREAT | O_WRONLY, 0644));
	}
	snprintf(path, sizeof(path), "%s/a/link", top);
	cr_assert_eq(symlink("dir", path), 0);
	store_count(&s->ds[0], 0, &c);
	cr_assert_eq(c.files, 3);
	cr_assert_eq(c.others, 1);
	cr_assert_eq(c.dirs, 1);
	store_count(&s->ds[0], 0, &c);	/* a second walk sees the same: no shared offset */
	cr_assert_eq(c.files, 3);
	store_count(&s->ds[0], 1, &c);
	cr_assert_eq(c.files + c.others + c.dirs, 1);
}
