/* mountinfo.c - see mountinfo.h.
 *
 * libmount reads the table (it knows the format's optional fields and decodes
 * the kernel's octal escapes in mount points); what is ours is the question asked
 * of it: the longest mount point that contains path, the later of two equal ones
 * (a mount over a mount hides the first).
 */
#include <errno.h>
#include <libmount.h>
#include <stdio.h>
#include <string.h>

#include "datastore.h"
#include "mountinfo.h"

/* A line libmount cannot parse is skipped, as the kernel never writes one: the
 * rest of the table is still the truth. */
static int skip_bad_line(struct libmnt_table *tb, const char *file, int line)
{
	(void)tb, (void)file, (void)line;
	return 1;
}

int mountinfo_type(FILE *f, const char *path, bool exact, char *type, size_t len)
{
	struct libmnt_table *tb = mnt_new_table();
	struct libmnt_iter *it = mnt_new_iter(MNT_ITER_FORWARD);
	struct libmnt_fs *fs;
	size_t best = 0;
	int ret = -ENOENT;

	if (!tb || !it) {
		ret = -ENOMEM;
		goto out;
	}
	mnt_table_set_parser_errcb(tb, skip_bad_line);
	if (mnt_table_parse_stream(tb, f, "mountinfo")) {
		ret = -EINVAL;
		goto out;
	}
	while (mnt_table_next_fs(tb, it, &fs) == 0) {
		const char *mnt = mnt_fs_get_target(fs), *t = mnt_fs_get_fstype(fs);
		size_t n;

		if (!mnt || !t)
			continue;
		n = strlen(mnt);
		if (exact ? strcmp(mnt, path) : !path_within(mnt, path) || n < best)
			continue;
		best = n;
		snprintf(type, len, "%s", t);
		ret = 0;
	}
out:
	mnt_free_iter(it);
	mnt_unref_table(tb);
	return ret;
}

void mount_type_of(const char *path, bool exact, char *type, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f || mountinfo_type(f, path, exact, type, len))
		snprintf(type, len, "?");
	if (f)
		fclose(f);
}
