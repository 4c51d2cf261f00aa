/* Unit tests for tools/vdsctl/paths.c: vdsctl's one rule for paths, from outside the
 * mount, from its root, from a folder in it, through a symlinked -m, and with -s
 * only. (it-readme runs the same rule through a real mount.) */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "paths.h"

struct row {
	const char *cwd, *arg;
	int ret;
	const char *want;	/* the relative path, or a piece of the message */
};

static void check(const char *root, const char *typed, const struct row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct mount_view mv = { .root = root, .typed = typed, .cwd = rows[i].cwd };
		char out[PATH_MAX] = "", err[512] = "";
		int ret = mount_relpath(&mv, rows[i].arg, out, sizeof(out), err, sizeof(err));

		cr_assert_eq(ret, rows[i].ret, "cwd %s, '%s': %d (%s%s)", rows[i].cwd, rows[i].arg,
			     ret, out, err);
		if (!ret)
			cr_assert_str_eq(out, rows[i].want, "cwd %s, '%s'", rows[i].cwd, rows[i].arg);
		else
			cr_assert(strstr(err, rows[i].want) && strstr(err, rows[i].arg) &&
				  !strchr(err, '\n'), "cwd %s, '%s': message '%s'", rows[i].cwd,
				  rows[i].arg, err);
	}
}

Test(paths, outside_the_mount_relative_to_its_root)
{
	static const struct row rows[] = {
		{ "/", "vm1/disk1.raw", 0, "vm1/disk1.raw" },
		{ "/home/u", "vm1/disk1.raw", 0, "vm1/disk1.raw" },
		{ "/mnt/vx", "vm1/d", 0, "vm1/d" },		/* a sibling sharing the prefix */
		{ "/mnt", "v/vm1/d", 0, "v/vm1/d" },	/* the cwd does not count outside */
		{ "/", "./vm1//x/../d/", 0, "vm1/d" },
		{ "/", "../x", -EXDEV, "is not inside the mount /mnt/v" },
		{ "/", "vm1/../..", -EXDEV, "is not inside the mount /mnt/v" },
		{ "/", ".", -EISDIR, "the mount's root" },
		{ "/", "vm1/..", -EISDIR, "the mount's root" },
		{ "/", "", -EINVAL, "empty path" },
	};

	check("/mnt/v", NULL, rows, sizeof(rows) / sizeof(rows[0]));
}

Test(paths, inside_the_mount_relative_to_the_cwd)
{
	static const struct row rows[] = {
		{ "/mnt/v", "vm1/disk1.raw", 0, "vm1/disk1.raw" },
		{ "/mnt/v/vm1", "disk1.raw", 0, "vm1/disk1.raw" },
		{ "/mnt/v/vm1", "vm1/disk1.raw", 0, "vm1/vm1/disk1.raw" },
		{ "/mnt/v/vm1/sub", "../../vm2/d", 0, "vm2/d" },
		{ "/mnt/v/vm1", "../../x", -EXDEV, "is not inside the mount /mnt/v" },
		{ "/mnt/v/vm1", "..", -EISDIR, "the mount's root" },
	};

	check("/mnt/v", NULL, rows, sizeof(rows) / sizeof(rows[0]));
}

Test(paths, absolute_must_lie_inside)
{
	static const struct row rows[] = {
		{ "/", "/mnt/v/vm1/disk", 0, "vm1/disk" },
		{ "/mnt/v/vm2", "/mnt/v/vm1/disk", 0, "vm1/disk" },	/* cwd plays no part */
		{ "/", "//mnt/./v/vm1/x/../disk/", 0, "vm1/disk" },
		{ "/", "/../mnt/v/a", 0, "a" },			/* "/.." is "/" */
		{ "/", "/var/lib/vdsfs/vm1/d", 0, "vm1/d" },	/* -m as typed */
		{ "/", "/etc/passwd", -EXDEV, "is not inside the mount /mnt/v" },
		{ "/", "/mnt/vx/a", -EXDEV, "is not inside the mount" },
		{ "/", "/mnt/v/../vx", -EXDEV, "is not inside the mount" },
		{ "/", "/var/lib/vdsfsx", -EXDEV, "is not inside the mount" },
		{ "/", "/mnt/v", -EISDIR, "the mount's root" },
		{ "/", "/var/lib/vdsfs/", -EISDIR, "the mount's root" },
	};

	check("/mnt/v", "/var/lib/vdsfs", rows, sizeof(rows) / sizeof(rows[0]));
}

/* getcwd failed: relative paths cannot be placed, absolute ones still can. */
Test(paths, unknown_cwd)
{
	static const struct row rows[] = {
		{ NULL, "vm1/d", -ENOENT, "cannot tell the current directory" },
		{ NULL, "/mnt/v/vm1/d", 0, "vm1/d" },
	};

	check("/mnt/v", NULL, rows, sizeof(rows) / sizeof(rows[0]));
}

/* -s without -m: the mount is unknown, every path is from its root. */
Test(paths, socket_only)
{
	static const struct row rows[] = {
		{ "/mnt/v/vm1", "vm1/d", 0, "vm1/d" },
		{ "/", "/vm1/d", 0, "vm1/d" },
		{ "/", "../x", -EXDEV, "leads out of the mount" },
		{ "/", "/", -EISDIR, "the mount's root" },
	};

	check(NULL, NULL, rows, sizeof(rows) / sizeof(rows[0]));
}

Test(paths, small_buffer)
{
	struct mount_view mv = { .root = "/mnt/v", .cwd = "/" };
	char out[8], err[256];

	cr_assert_eq(mount_relpath(&mv, "vm1/disk1.raw", out, sizeof(out), err, sizeof(err)),
		     -ENAMETOOLONG);
	cr_assert(strstr(err, "too long"), "%s", err);
	cr_assert_eq(mount_relpath(&mv, "vm1/abc", out, sizeof(out), err, sizeof(err)), 0);
	cr_assert_str_eq(out, "vm1/abc");
}

Test(paths, fold)
{
	static const char *cases[][2] = {
		{ "/", "/" }, { "//", "/" }, { "/..", "/" }, { "/a/./b/../c/", "/a/c" },
		{ "/a//b", "/a/b" }, { "/a/b/../..", "/" }, { "/.a/..b", "/.a/..b" },
	};
	char out[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(path_fold(cases[i][0], out, sizeof(out)), 0);
		cr_assert_str_eq(out, cases[i][1], "fold '%s'", cases[i][0]);
	}
	cr_assert_eq(path_fold("a/b", out, sizeof(out)), -EINVAL);
}
