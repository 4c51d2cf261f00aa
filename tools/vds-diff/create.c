/* create.c - `vds-diff create`: a new, empty differencing file over a base.
 * The differencing file must not exist yet (O_EXCL): never clobber a live one. */
#include <fcntl.h>
#include <stdint.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "overlay.h"
#include "size.h"
#include "vds-diff.h"

static const char usage[] =
	"usage: vds-diff create [--block-size N] [--size N] [--uuid ID] BASE DIFF\n"
	"Create the differencing file DIFF over the base image BASE.\n"
	"  --block-size N  block size, power of two from 4K to 1M (default 4K)\n"
	"  --size N        logical size (default: the size of BASE)\n"
	"  --uuid ID       identity string of the base; later opens must give it too\n"
	"N is bytes:\n"
	"  " VDS_SIZE_SYNTAX ".\n";

int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "block-size", required_argument, 0, 'b' }, { "size", required_argument, 0, 's' },
		{ "uuid", required_argument, 0, 'u' }, { "help", no_argument, 0, 'h' }, { 0 }
	};
	struct overlay_create_opts o = { .size = -1 };
	uint64_t v;
	int c, base, diff, ret;
	struct overlay *ov;
	char err[256];

	while ((c = getopt_long(argc, argv, "b:s:u:h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			return 0;
		}
		if ((c == 'b' || c == 's') &&
		    vds_size_parse(c == 'b' ? "--block-size" : "--size", optarg,
				   c == 'b' ? UINT32_MAX : INT64_MAX, &v, err, sizeof(err))) {
			fail("%s", err);
			return 2;	/* a usage error */
		}
		if (c == 'b')
			o.block_size = (uint32_t)v;
		else if (c == 's')
			o.size = (int64_t)v;
		else if (c == 'u')
			o.base_uuid = optarg;
		else
			die_usage(usage);
	}
	if (argc - optind != 2)
		die_usage(usage);
	if (open_or_fail(argv[optind], O_RDONLY, &base))
		return 1;
	if (open_or_fail(argv[optind + 1], O_RDWR | O_CREAT | O_EXCL, &diff))
		return 1;
	ret = overlay_create(base, diff, &o, &ov);
	if (ret) {
		unlink(argv[optind + 1]);
		return fail("create %s: %s", argv[optind + 1], ov_strerror(ret));
	}
	overlay_close(ov);
	close(diff);
	close(base);
	return 0;
}
