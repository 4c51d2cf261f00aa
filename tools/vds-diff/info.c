/* info.c - `vds-diff info`: header fields and block counts, text or JSON.
 * Needs only the differencing file: it is opened read-only without its base. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>

#include "overlay.h"
#include "vds-diff.h"

static const char usage[] =
	"usage: vds-diff info [--json] DIFF\n"
	"Show the committed header of the differencing file DIFF and its block counts.\n"
	"  --json  print one JSON object instead of text\n";

static void print_json(const struct overlay_stats *s, uint64_t alloc)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "size", json_object_new_int64((int64_t)s->size));
	json_object_object_add(o, "block_size", json_object_new_int64(s->block_size));
	json_object_object_add(o, "blocks", json_object_new_int64((int64_t)s->nblocks));
	json_object_object_add(o, "data_blocks", json_object_new_int64((int64_t)s->data_blocks));
	json_object_object_add(o, "zero_blocks", json_object_new_int64((int64_t)s->zero_blocks));
	json_object_object_add(o, "data_bytes", json_object_new_int64((int64_t)s->data_bytes));
	json_object_object_add(o, "allocated_bytes", json_object_new_int64((int64_t)alloc));
	json_object_object_add(o, "generation", json_object_new_int64((int64_t)s->gen));
	json_object_object_add(o, "format_version", json_object_new_int64(s->version));
	json_object_object_add(o, "log_blocks", json_object_new_int64((int64_t)s->log_blocks));
	json_object_object_add(o, "base_size", json_object_new_int64((int64_t)s->base_size));
	json_object_object_add(o, "base_uuid", json_object_new_string(s->base_uuid));
	json_object_object_add(o, "base_dirty", json_object_new_boolean(s->flags & 1));
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
	json_object_put(o);
}

static void print_text(const struct overlay_stats *s, uint64_t alloc)
{
	printf("size:            %llu\n", (unsigned long long)s->size);
	printf("block size:      %u\n", s->block_size);
	printf("blocks:          %llu\n", (unsigned long long)s->nblocks);
	printf("data blocks:     %llu (%llu bytes)\n", (unsigned long long)s->data_blocks,
	       (unsigned long long)s->data_bytes);
	printf("zero blocks:     %llu\n", (unsigned long long)s->zero_blocks);
	printf("allocated bytes: %llu\n", (unsigned long long)alloc);
	printf("generation:      %llu\n", (unsigned long long)s->gen);
	printf("format version:  %u\n", s->version);
	printf("log blocks:      %llu (%llu free)\n", (unsigned long long)s->log_blocks,
	       (unsigned long long)s->free_blocks);
	printf("base size:       %llu\n", (unsigned long long)s->base_size);
	printf("base uuid:       %s\n", s->base_uuid);
	printf("base modified:   %s\n", s->flags & 1 ? "yes (a merge onto it started)" : "no");
}

int cmd_info(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, 0, 'j' }, { "help", no_argument, 0, 'h' }, { 0 }
	};
	struct overlay_open_opts oo = { .flags = OVERLAY_OPEN_RDONLY };
	struct overlay_stats s;
	struct overlay *ov;
	struct stat st;
	char why[256] = "";
	bool json = false;
	int c, fd, ret;

	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			return 0;
		}
		if (c != 'j')
			die_usage(usage);
		json = true;
	}
	if (argc - optind != 1)
		die_usage(usage);
	if (open_or_fail(argv[optind], O_RDONLY, &fd))
		return 1;
	oo.why = why;
	oo.why_len = sizeof(why);
	ret = overlay_open(-1, fd, &oo, &ov);
	if (ret)
		return fail("%s: %s%s%s", argv[optind], ov_strerror(ret), *why ? ": " : "", why);
	overlay_stats(ov, &s);
	overlay_close(ov);
	fstat(fd, &st);
	close(fd);
	if (json)
		print_json(&s, (uint64_t)st.st_blocks * 512);
	else
		print_text(&s, (uint64_t)st.st_blocks * 512);
	return 0;
}
