/* Unit tests for fs/store/mountinfo.c: the filesystem type under a path, from mountinfo text. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mountinfo.h"

static const char table[] =
	"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
	"30 22 0:25 / /tmp rw shared:2 - tmpfs tmpfs rw\n"
	"41 30 0:40 / /tmp/vm\\040disks rw,nosuid - fuse.vdsfs vdsfs rw,user_id=0\n"
	"42 30 0:41 / /tmp/vm rw - xfs /dev/vdb rw\n"
	"43 30 0:42 / /tmp/tagged rw shared:3 master:1 propagate_from:1 - btrfs /dev/vdc rw\n"
	"garbage line without separator\n";

static int type_of(const char *path, bool exact, char *type)
{
	FILE *f = fmemopen((void *)table, sizeof(table) - 1, "r");
	int ret;

	cr_assert_not_null(f);
	ret = mountinfo_type(f, path, exact, type, 64);
	fclose(f);
	return ret;
}

Test(mountinfo, longest_prefix_wins)
{
	char t[64];

	cr_assert_eq(type_of("/tmp/vm/a/disk", false, t), 0);
	cr_assert_str_eq(t, "xfs");
	cr_assert_eq(type_of("/tmp/vmx", false, t), 0);
	cr_assert_str_eq(t, "tmpfs", "a name prefix is not a path prefix");
	cr_assert_eq(type_of("/tmp/tagged/x", false, t), 0);
	cr_assert_str_eq(t, "btrfs", "several optional fields before the separator");
	cr_assert_eq(type_of("/home", false, t), 0);
	cr_assert_str_eq(t, "ext4");
}

Test(mountinfo, escaped_mount_points_and_exact_match)
{
	char t[64];

	cr_assert_eq(type_of("/tmp/vm disks", true, t), 0);
	cr_assert_str_eq(t, "fuse.vdsfs");
	cr_assert_eq(type_of("/tmp/vm disks/sub", true, t), -ENOENT);
	cr_assert_eq(type_of("/tmp/vm\\040disks", true, t), -ENOENT);
}
