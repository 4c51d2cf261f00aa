/* control_path.c - see control_path.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "control_path.h"

int control_default_path(const char *mnt, char *out, size_t len)
{
	size_t pos = snprintf(out, len, "%s/", VDS_CONTROL_DIR);

	for (const char *p = mnt + 1; *p && pos + 6 < len; p++)
		out[pos++] = *p == '/' ? '-' : *p;
	if (pos + 6 >= len)
		return -ENAMETOOLONG;
	strcpy(out + pos, ".sock");
	return 0;
}
