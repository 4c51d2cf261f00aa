/* Unit tests for fs/opts.c: the command line as users and mount.fuse3 write it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>

#include "opts.h"

static struct vds_opts o;
static char err[VDS_ERR_LEN];

static int parse(int argc, char **argv)
{
	err[0] = 0;
	return opts_parse(&o, argc, argv, err, sizeof(err));
}

static void teardown(void)
{
	opts_free(&o);
}

TestSuite(opts, .fini = teardown);

Test(opts, positional_and_defaults)
{
	char *argv[] = { "vdsfs", "a=/x:b=/y/z", "/mnt" };

	cr_assert_eq(parse(3, argv), 0, "%s", err);
	cr_assert_eq(o.nds, 2);
	cr_assert_str_eq(o.ds[0].name, "a");
	cr_assert_str_eq(o.ds[1].path, "/y/z");
	cr_assert_str_eq(o.mountpoint, "/mnt");
	cr_assert_eq(o.create, VDS_CREATE_MFS);
	cr_assert_not(o.foreground);
	cr_assert_str_eq(o.fuse_opts, "");
}

Test(opts, mount_fuse3_order_and_own_keys)
{
	char *argv[] = { "vdsfs", "a=/x:b=/y", "/mnt", "-o",
			 "rw,allow_other,create=b,control=/run/c.sock,threads=4,nofail,x-systemd.foo,_netdev,timeout=2.5,control_group=kvm" };

	cr_assert_eq(parse(5, argv), 0, "%s", err);
	cr_assert_eq(o.create, VDS_CREATE_NAMED);
	cr_assert_str_eq(o.create_name, "b");
	cr_assert_str_eq(o.control, "/run/c.sock");
	cr_assert_str_eq(o.control_group, "kvm");
	cr_assert_eq(o.threads, 4);
	cr_assert_float_eq(o.timeout, 2.5, 1e-9);
	/* fstab-only words are dropped, FUSE words passed on in order */
	cr_assert_str_eq(o.fuse_opts, "rw,allow_other");
}

/* Datastores as separate arguments, as vds-copy takes them, or both forms mixed:
 * every positional argument but the last names datastores. */
Test(opts, datastores_as_separate_arguments)
{
	char *argv[] = { "vdsfs", "a=/x", "-f", "b=/y:c=/z", "d=/w", "/mnt", "-o", "create=d" };

	cr_assert_eq(parse(8, argv), 0, "%s", err);
	cr_assert_eq(o.nds, 4);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(o.ds[i].name[0], "abcd"[i]);
	cr_assert_str_eq(o.ds[3].path, "/w");
	cr_assert_str_eq(o.mountpoint, "/mnt");
	cr_assert(o.foreground);
}

Test(opts, flags)
{
	char *argv[] = { "vdsfs", "-f", "-ocreate=ff", "a=/x", "/m", "-d" };

	cr_assert_eq(parse(6, argv), 0, "%s", err);
	cr_assert(o.foreground);
	cr_assert(o.debug);
	cr_assert_eq(o.create, VDS_CREATE_FF);
}

Test(opts, daemon_keys)
{
	char *argv[] = { "vdsfs", "a=/x", "/m", "-o",
			 "oom_score_adj=-500,metrics=/var/lib/node/vdsfs.prom,metrics_interval=0.5,fsname=a\\,b" };

	cr_assert_eq(parse(5, argv), 0, "%s", err);
	cr_assert(o.oom_set);
	cr_assert_eq(o.oom_score_adj, -500);
	cr_assert_str_eq(o.metrics, "/var/lib/node/vdsfs.prom");
	cr_assert_float_eq(o.metrics_interval, 0.5, 1e-9);
	/* libfuse's splitter: an escaped comma stays inside its word, and is escaped
	 * again for the session's own parse */
	cr_assert_str_eq(o.fuse_opts, "fsname=a\\,b");
}

Test(opts, daemon_key_defaults)
{
	char *argv[] = { "vdsfs", "a=/x", "/m" };

	cr_assert_eq(parse(3, argv), 0, "%s", err);
	cr_assert_not(o.oom_set);
	cr_assert_null(o.metrics);
	cr_assert_float_eq(o.metrics_interval, 5.0, 1e-9);
}

Test(opts, help_needs_nothing_else)
{
	char *argv[] = { "vdsfs", "--help" };

	cr_assert_eq(parse(2, argv), 0);
	cr_assert(o.help);
}

struct bad {
	int argc;
	char *argv[6];
	const char *msg;
};

/* Table-driven rather than ParameterizedTest: criterion re-executes its workers, so
 * pointers inside parameter structs would not survive into them. */
Test(opts, refused)
{
	static struct bad cases[] = {
			{ 1, { "vdsfs" }, "no datastores" },
			{ 2, { "vdsfs", "a=/x" }, "no mountpoint" },
			{ 3, { "vdsfs", "/x", "/m" }, "is not NAME=PATH" },
			{ 3, { "vdsfs", "a=/x:a=/y", "/m" }, "given twice" },
			{ 3, { "vdsfs", "a=", "/m" }, "empty path" },
			{ 3, { "vdsfs", "b@d=/x", "/m" }, "must be 1-32" },
			{ 3, { "vdsfs", "=/x", "/m" }, "must be 1-32" },
			{ 4, { "vdsfs", "a=/x", "/m", "/extra" }, "datastore '/m' is not NAME=PATH" },
			{ 4, { "vdsfs", "a=/x", "a=/y", "/m" }, "'a' is given twice" },
			{ 4, { "vdsfs", "--frobnicate", "a=/x", "/m" }, "unknown option" },
			{ 5, { "vdsfs", "a=/x", "/m", "-o", "create=zz" }, "names no datastore" },
			{ 5, { "vdsfs", "a=/x", "/m", "-o", "create=b/d" }, "expected mfs, ff" },
			{ 5, { "vdsfs", "a=/x", "/m", "-o", "threads=0" }, "whole number" },
			{ 5, { "vdsfs", "a=/x", "/m", "-o", "threads=2.5" }, "whole number" },
			{ 5, { "vdsfs", "a=/x", "/m", "-o", "control=rel.sock" }, "must be absolute" },
			{ 5, { "vdsfs", "a=/x", "/m", "-o", "timeout=-1" }, "seconds" },
			{ 5, { "vdsfs", "a=/x", "/m", "-o", "control_group=" }, "group name or id" },
			{ 4, { "vdsfs", "a=/x", "/m", "-o" }, "needs an argument" },
			{ 5, { "vdsfs", "a=/x", "/m", "-o", "oom_score_adj=-1001" }, "-1000-1000" },
			{ 5, { "vdsfs", "a=/x", "/m", "-o", "oom_score_adj=1.5" }, "whole number" },
			{ 5, { "vdsfs", "a=/x", "/m", "-o", "metrics=rel.prom" }, "must be absolute" },
			{ 5, { "vdsfs", "a=/x", "/m", "-o", "metrics_interval=0" }, "0.1-3600" },
		};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct bad *c = &cases[i];

		opts_free(&o);
		cr_assert_eq(parse(c->argc, c->argv), -EINVAL, "accepted: %s", c->msg);
		cr_assert(strstr(err, c->msg), "error '%s' lacks '%s'", err, c->msg);
		cr_assert_null(strchr(err, '\n'), "error must be one line");
	}
}

Test(opts, too_many_datastores)
{
	char spec[VDS_MAX_DS * 16 + 64] = "";
	char *argv[] = { "vdsfs", spec, "/m" };

	for (int i = 0; i <= VDS_MAX_DS; i++)
		sprintf(spec + strlen(spec), "%sd%d=/p%d", i ? ":" : "", i, i);
	cr_assert_eq(parse(3, argv), -EINVAL);
	cr_assert(strstr(err, "too many"));
}
