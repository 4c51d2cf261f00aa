/* paths.c - see paths.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "datastore.h"
#include "paths.h"

bool vds_path_sane(const char *p)
{
	if (!p || !*p || *p == '/' || strlen(p) >= PATH_MAX || strchr(p, '\n'))
		return false;
	for (const char *s = p;;) {
		size_t l = strcspn(s, "/");

		if (l == 0 || (l == 1 && s[0] == '.') || (l == 2 && !strncmp(s, "..", 2)))
			return false;
		if (s == p && l == strlen(VDS_STATE_DIR) && !strncmp(s, VDS_STATE_DIR, l))
			return false;
		if (!s[l])
			return true;
		s += l + 1;
	}
}

void vds_parent_path(const char *path, char *out, size_t len)
{
	const char *s = strrchr(path, '/');

	snprintf(out, len, "%.*s", s ? (int)(s - path) : 1, s ? path : ".");
}

int open_noatime(const char *path, int flags)
{
	int fd = open(path, flags | O_NOATIME);

	return fd < 0 && errno == EPERM ? open(path, flags) : fd;
}

ssize_t pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return done ? (ssize_t)done : -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}
