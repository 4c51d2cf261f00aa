/* mountinfo.c - see mountinfo.h. */
#include <errno.h>
#include <string.h>

#include "datastore.h"
#include "mountinfo.h"

/* In place: "\040" -> ' ' and the like (the kernel's mangle of space, tab, newline
 * and backslash). */
static void unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = 0;
}

int mountinfo_type(FILE *f, const char *path, bool exact, char *type, size_t len)
{
	char line[8192];
	size_t best = 0;
	int ret = -ENOENT;

	while (fgets(line, sizeof(line), f)) {
		char mnt[4096], t[64];
		const char *sep = strstr(line, " - ");

		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(sep + 3, "%63s", t) != 1)
			continue;
		unescape(mnt);
		if (exact ? strcmp(mnt, path) : !path_within(mnt, path) || strlen(mnt) < best)
			continue;
		best = strlen(mnt);
		snprintf(type, len, "%s", t);
		ret = 0;
	}
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
