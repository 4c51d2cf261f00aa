/* merge.c - `vds-diff merge`: apply a differencing file offline.
 *
 * Onto a copy of the base (TARGET given) or onto the base itself (no TARGET, the
 * cancel case).  The differencing file is opened against its base first, so a
 * file is never merged using the wrong base; the merge itself only copies the
 * file's own DATA and ZERO blocks and truncates the target to the logical size. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "overlay.h"
#include "vds-diff.h"

static const char usage[] =
	"usage: vds-diff merge [--uuid ID] [--no-identity] BASE DIFF [TARGET]\n"
	"Apply the differencing file DIFF onto TARGET, a copy of BASE, or onto BASE\n"
	"itself when TARGET is omitted.  TARGET is truncated to the logical size.\n"
	"  --uuid ID       the base identity string given at create\n"
	"  --no-identity   skip the base identity check (e.g. BASE was changed)\n";

static int run(const char *base_p, const char *diff_p, const char *target_p,
	       struct overlay_open_opts *oo)
{
	int base = -1, diff = -1, target = -1, ret = 1;
	struct overlay *ov = NULL;
	struct overlay_stats s;
	char why[256] = "";

	oo->why = why;
	oo->why_len = sizeof(why);
	if (open_or_fail(base_p, target_p ? O_RDONLY : O_RDWR, &base) ||
	    open_or_fail(diff_p, target_p ? O_RDONLY : O_RDWR, &diff) ||
	    open_or_fail(target_p ? target_p : base_p, O_RDWR, &target))
		goto out;
	if (target_p)
		oo->flags |= OVERLAY_OPEN_RDONLY;
	int r = overlay_open(base, diff, oo, &ov);

	if (r) {
		fail("%s: %s%s%s", diff_p, ov_strerror(r), *why ? ": " : "", why);
		goto out;
	}
	r = overlay_merge(ov, target);
	if (r) {
		fail("merge into %s: %s", target_p ? target_p : base_p, ov_strerror(r));
		goto out;
	}
	overlay_stats(ov, &s);
	printf("merged %llu data and %llu zero blocks into %s\n",
	       (unsigned long long)s.data_blocks, (unsigned long long)s.zero_blocks,
	       target_p ? target_p : base_p);
	ret = 0;
out:
	overlay_close(ov);
	for (int *fd = (int[]){ base, diff, target }, i = 0; i < 3; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	return ret;
}

int cmd_merge(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "uuid", required_argument, 0, 'u' }, { "no-identity", no_argument, 0, 'n' },
		{ "help", no_argument, 0, 'h' }, { 0 }
	};
	struct overlay_open_opts oo = { 0 };
	int c;

	while ((c = getopt_long(argc, argv, "u:nh", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			return 0;
		}
		if (c == 'u')
			oo.base_uuid = optarg;
		else if (c == 'n')
			oo.flags |= OVERLAY_OPEN_NO_IDENTITY;
		else
			die_usage(usage);
	}
	if (argc - optind != 2 && argc - optind != 3)
		die_usage(usage);
	return run(argv[optind], argv[optind + 1], argc - optind == 3 ? argv[optind + 2] : NULL,
		   &oo);
}
