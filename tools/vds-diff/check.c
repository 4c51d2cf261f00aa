/* check.c - `vds-diff check`: verify a differencing file, exit 1 on any problem.
 * With --base it also verifies that the file belongs to that base. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "overlay.h"
#include "vds-diff.h"

static const char usage[] =
	"usage: vds-diff check [--verbose] [--base BASE [--uuid ID]] DIFF\n"
	"Verify the structure and every checksum of the differencing file DIFF.\n"
	"Exit status 0: healthy; 1: a problem was found (each one is printed).\n"
	"  --base BASE  also verify that DIFF belongs to the base image BASE\n"
	"  --uuid ID    the base identity string given at create\n"
	"  --verbose    also print what was checked\n";

struct out {
	const char *path;
	bool verbose;
};

static void report(void *arg, const char *msg)
{
	struct out *o = arg;

	if (strncmp(msg, "using header", 12))
		fprintf(stderr, "vds-diff: %s: %s\n", o->path, msg);
	else if (o->verbose)
		printf("%s: %s\n", o->path, msg);
}

static int check_base(const char *base_path, const char *uuid, int fd)
{
	struct overlay_open_opts oo = { .base_uuid = uuid, .flags = OVERLAY_OPEN_RDONLY };
	char why[256] = "";
	struct overlay *ov;
	int base, ret;

	if (open_or_fail(base_path, O_RDONLY, &base))
		return 1;
	oo.why = why;
	oo.why_len = sizeof(why);
	ret = overlay_open(base, fd, &oo, &ov);
	close(base);
	if (ret)
		return fail("%s: %s%s%s", base_path, ov_strerror(ret), *why ? ": " : "", why);
	overlay_close(ov);
	return 0;
}

int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "base", required_argument, 0, 'b' }, { "uuid", required_argument, 0, 'u' },
		{ "verbose", no_argument, 0, 'v' }, { "help", no_argument, 0, 'h' }, { 0 }
	};
	const char *base = NULL, *uuid = NULL;
	struct out o = { 0 };
	int c, fd, n;

	while ((c = getopt_long(argc, argv, "b:u:vh", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			return 0;
		}
		if (c == 'b')
			base = optarg;
		else if (c == 'u')
			uuid = optarg;
		else if (c == 'v')
			o.verbose = true;
		else
			die_usage(usage);
	}
	if (argc - optind != 1)
		die_usage(usage);
	o.path = argv[optind];
	if (open_or_fail(o.path, O_RDONLY, &fd))
		return 1;
	n = overlay_check(fd, report, &o);
	if (n < 0) {
		close(fd);
		return fail("%s: %s", o.path, ov_strerror(n));
	}
	if (n > 0) {
		close(fd);
		return fail("%s: %d problem%s found", o.path, n, n == 1 ? "" : "s");
	}
	n = base ? check_base(base, uuid, fd) : 0;
	close(fd);
	if (!n && o.verbose)
		printf("%s: ok\n", o.path);
	return n;
}
