/* main.c - vds-diff: offline tool for vdsfs differencing files.
 *
 * Dispatches to one file per subcommand.  It only uses the public overlay API,
 * so it is also a worked example for other callers of the library.
 */
#include <stdio.h>
#include <string.h>

#include "vds-diff.h"

static const char usage[] =
	"usage: vds-diff <command> [options] ...\n"
	"Inspect and apply vdsfs differencing files (overlay/FORMAT.md).\n"
	"\n"
	"commands:\n"
	"  create  create an empty differencing file over a base image\n"
	"  info    show header fields and block counts (--json)\n"
	"  check   verify structure and checksums; exit 1 on any problem\n"
	"  merge   apply a differencing file onto its base or onto a copy of it\n"
	"\n"
	"'vds-diff <command> --help' describes each command; 'vds-diff --version'\n"
	"prints the version.\n";

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "create", cmd_create }, { "info", cmd_info },
		{ "check", cmd_check }, { "merge", cmd_merge },
	};

	if (argc < 2)
		die_usage(usage);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage, stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("vds-diff %s\n", VDS_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "vds-diff: unknown command '%s'\n", argv[1]);
	die_usage(usage);
	return 2;
}
