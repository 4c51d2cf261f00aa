/* test_tool.c - vds-diff's command line: every subcommand has --help, usage errors
 * exit 2, create/info/check work on a fresh file, and info --json is valid JSON
 * with the right numbers. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <criterion/criterion.h>
#include <json-c/json.h>

#include "helpers.h"

Test(tool, help_and_usage_errors)
{
	static const char *cmds[] = { "create", "info", "check", "merge" };

	cr_assert_eq(run_vds_diff("--help", NULL), 0);
	cr_assert_eq(run_vds_diff("frobnicate", NULL), 2);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(run_vds_diff(cmds[i], "--help", NULL), 0, "%s --help", cmds[i]);
		cr_assert_eq(run_vds_diff(cmds[i], NULL), 2, "%s without arguments", cmds[i]);
	}
}

/* Run `vds-diff info --json path` and parse its output. */
static json_object *info_json(const char *path)
{
	char cmd[600], out[4096] = "";
	FILE *p;
	size_t n;

	snprintf(cmd, sizeof(cmd), "'%s' info --json '%s'", getenv("VDS_DIFF"), path);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	cr_assert_eq(pclose(p), 0, "info --json failed");
	json_object *o = json_tokener_parse(out);

	cr_assert_not_null(o, "not JSON: %s", out);
	return o;
}

static int64_t field(json_object *o, const char *k)
{
	json_object *v;

	cr_assert(json_object_object_get_ex(o, k, &v), "no field %s", k);
	return json_object_get_int64(v);
}

Test(tool, create_info_check)
{
	struct tdir d;
	char bp[300], dp[300];
	int base, diff;
	struct overlay *ov;
	uint8_t buf[8192];

	cr_assert_not_null(getenv("VDS_DIFF"));
	tdir_new(&d);
	tdir_file(&d, "base", bp, sizeof(bp));
	tdir_file(&d, "diff", dp, sizeof(dp));
	base = make_base(bp, 100000, 1, NULL);
	cr_assert_eq(run_vds_diff("create", "--block-size", "16K", "--uuid", "vm1", bp, dp, NULL), 0);
	cr_assert_eq(run_vds_diff("create", bp, dp, NULL), 1, "create overwrote a file");
	cr_assert_eq(run_vds_diff("check", "--base", bp, "--uuid", "vm1", dp, NULL), 0);

	diff = open_rw(dp);
	ov = ov_reopen(base, diff, "vm1");
	memset(buf, 1, sizeof(buf));
	cr_assert_eq(overlay_write(ov, buf, sizeof(buf), 16384 * 2), (ssize_t)sizeof(buf));
	cr_assert_eq(overlay_discard(ov, 16384 * 4, 16384 * 2), 0);
	cr_assert_eq(overlay_flush(ov), 0);
	overlay_close(ov);

	json_object *o = info_json(dp);

	cr_assert_eq(field(o, "size"), 100000);
	cr_assert_eq(field(o, "block_size"), 16384);
	cr_assert_eq(field(o, "data_blocks"), 1);
	cr_assert_eq(field(o, "zero_blocks"), 2);
	cr_assert_eq(field(o, "data_bytes"), 16384);
	cr_assert_eq(field(o, "base_size"), 100000);
	cr_assert_eq(field(o, "format_version"), 2);
	cr_assert_geq(field(o, "log_blocks"), 1);
	json_object *u;

	cr_assert(json_object_object_get_ex(o, "base_uuid", &u));
	cr_assert_str_eq(json_object_get_string(u), "vm1");
	json_object_put(o);
	cr_assert_eq(run_vds_diff("info", dp, NULL), 0);
	cr_assert_eq(run_vds_diff("check", dp, NULL), 0);
	close(base);
	close(diff);
	tdir_rm(&d);
}

/* `vds-diff merge BASE DIFF` (no target) cancels: the base becomes the overlay's
 * image, and the file still opens against the changed base afterwards. */
Test(tool, merge_onto_base)
{
	struct tdir d;
	char bp[300], dp[300];
	uint8_t *want = malloc(50000), buf[7000];
	int base, diff;
	struct overlay *ov;

	tdir_new(&d);
	tdir_file(&d, "base", bp, sizeof(bp));
	tdir_file(&d, "diff", dp, sizeof(dp));
	base = make_base(bp, 50000, 2, NULL);
	diff = open_new(dp);
	ov = ov_new(base, diff, 4096, "x");
	memset(buf, 0x42, sizeof(buf));
	cr_assert_eq(overlay_write(ov, buf, sizeof(buf), 3000), (ssize_t)sizeof(buf));
	cr_assert_eq(overlay_discard(ov, 20480, 8192), 0);
	cr_assert_eq(overlay_flush(ov), 0);
	cr_assert_eq(overlay_read(ov, want, 50000, 0), 50000);
	overlay_close(ov);
	cr_assert_eq(run_vds_diff("merge", "--uuid", "x", bp, dp, NULL), 0);
	expect_file(base, want, 50000);
	ov = ov_reopen(base, diff, "x");	/* BASE_DIRTY: the fingerprint is not checked */
	expect_contents(ov, want, 50000);
	overlay_close(ov);
	close(base);
	close(diff);
	tdir_rm(&d);
	free(want);
}
