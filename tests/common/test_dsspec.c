/* Unit tests for common/dsspec.c: NAME=PATH as vdsfs and vds-copy read it, joined by
 * ':' or one per argument, every refusal with its one-line message, and the bound. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dsspec.h"

static struct vds_ds_spec ds[VDS_MAX_DS];
static int n;
static char err[256];

static int parse(const char *arg)
{
	err[0] = 0;
	return vds_ds_parse(ds, &n, arg, err, sizeof(err));
}

static void reset(void)
{
	vds_ds_free(ds, n);
	n = 0;
}

TestSuite(dsspec, .fini = reset);

Test(dsspec, joined_and_separate)
{
	cr_assert_eq(parse("a=/x:B_2-c=/y/z"), 0, "%s", err);
	cr_assert_eq(parse("d=relative/path"), 0, "%s", err);
	cr_assert_eq(parse("e=/with=equals"), 0, "%s", err);	/* only the first '=' splits */
	cr_assert_eq(n, 4);
	cr_assert_str_eq(ds[0].name, "a");
	cr_assert_str_eq(ds[0].path, "/x");
	cr_assert_str_eq(ds[1].name, "B_2-c");
	cr_assert_str_eq(ds[1].path, "/y/z");
	cr_assert_str_eq(ds[2].path, "relative/path");
	cr_assert_str_eq(ds[3].name, "e");
	cr_assert_str_eq(ds[3].path, "/with=equals");
	cr_assert_eq(vds_ds_find(ds, n, "B_2-cXX", 5), 1);
	cr_assert_eq(vds_ds_find(ds, n, "B_2", 3), -1);
}

Test(dsspec, longest_name)
{
	char arg[VDS_NAME_MAX + 8];

	memset(arg, 'n', VDS_NAME_MAX);
	strcpy(arg + VDS_NAME_MAX, "=/p");
	cr_assert_eq(parse(arg), 0, "%s", err);
	cr_assert_eq(strlen(ds[0].name), VDS_NAME_MAX);
	reset();
	memset(arg, 'n', VDS_NAME_MAX + 1);
	strcpy(arg + VDS_NAME_MAX + 1, "=/p");
	cr_assert_eq(parse(arg), -EINVAL);
	cr_assert(strstr(err, "must be 1-32 of [A-Za-z0-9_-]"), "%s", err);
}

/* Each refusal names what is wrong in one line; earlier entries stay counted so the
 * caller can free them. */
Test(dsspec, refused)
{
	static const struct {
		const char *first, *arg, *msg;
	} bad[] = {
		{ NULL, "", "no datastores given" },
		{ NULL, "/x", "datastore '/x' is not NAME=PATH" },
		{ NULL, "a=/x::b=/y", "datastore '' is not NAME=PATH" },
		{ NULL, "a=", "datastore 'a' has an empty path" },
		{ NULL, "a=/x:b=", "datastore 'b' has an empty path" },
		{ NULL, "=/x", "datastore name '' must be" },
		{ NULL, "b@d=/x", "datastore name 'b@d' must be" },
		{ NULL, "a b=/x", "datastore name 'a b' must be" },
		{ NULL, "a=/x:a=/y", "datastore name 'a' is given twice" },
		{ "a=/x", "b=/y:a=/z", "datastore name 'a' is given twice" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		reset();
		if (bad[i].first)
			cr_assert_eq(parse(bad[i].first), 0);
		cr_assert_eq(parse(bad[i].arg), -EINVAL, "'%s' accepted", bad[i].arg);
		cr_assert(strstr(err, bad[i].msg), "'%s': '%s' lacks '%s'", bad[i].arg, err, bad[i].msg);
		cr_assert_null(strchr(err, '\n'));
		for (int k = 0; k < n; k++)
			cr_assert_not_null(ds[k].path, "entry %d counted but not set", k);
	}
}

/* The bound holds across arguments, and the one past it is refused by name. */
Test(dsspec, too_many)
{
	char arg[32];

	for (int i = 0; i < VDS_MAX_DS; i++) {
		snprintf(arg, sizeof(arg), "d%d=/p%d", i, i);
		cr_assert_eq(parse(arg), 0, "%s", err);
	}
	cr_assert_eq(parse("extra=/p"), -EINVAL);
	cr_assert(strstr(err, "too many datastores (at most 64)"), "%s", err);
	cr_assert_eq(n, VDS_MAX_DS);
}
