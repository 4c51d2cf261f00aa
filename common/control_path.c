/* control_path.c - the default control socket name, escaped by systemd-escape --path's
 * rules: components joined by '-', every byte outside [A-Za-z0-9:_.] (so '-' itself,
 * spaces, UTF-8) as \xNN in lowercase hex, a leading '.' as \x2e, "/" alone as "-".
 * Only '-' can stand for '/', so the mapping is one-to-one. Byte classes are
 * spelled out rather than taken from <ctype.h>: a locale must not change a name.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/un.h>

#include "control_path.h"

#define SOCK_SUFFIX	".sock"

struct out {
	char *buf;
	size_t len, pos;	/* len already excludes room for the suffix and NUL */
};

static bool put(struct out *o, const char *s, size_t n)
{
	if (o->pos + n > o->len)
		return false;
	memcpy(o->buf + o->pos, s, n);
	o->pos += n;
	return true;
}

static bool byte_plain(unsigned char c, bool first)
{
	if (c == '.')
		return !first;	/* a leading dot would make a hidden file */
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == ':' || c == '_';
}

static bool put_byte(struct out *o, unsigned char c, bool first)
{
	static const char hex[] = "0123456789abcdef";
	char esc[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };

	return byte_plain(c, first) ? put(o, (const char *)&c, 1) : put(o, esc, 4);
}

/* Components of p between runs of '/'; "." and ".." refused. */
static int put_components(struct out *o, const char *p)
{
	bool first = true;

	while (*p) {
		size_t n = strcspn(p, "/");

		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return -EINVAL;
		if (!first && !put(o, "-", 1))
			return -ENAMETOOLONG;
		for (size_t i = 0; i < n; i++, first = false)
			if (!put_byte(o, (unsigned char)p[i], first))
				return -ENAMETOOLONG;
		p += n;
		p += strspn(p, "/");
	}
	return first && !put(o, "-", 1) ? -ENAMETOOLONG : 0;	/* "/" itself is "-" */
}

int control_default_path(const char *mnt, char *out, size_t len)
{
	size_t cap = len < sizeof(((struct sockaddr_un *)0)->sun_path) ?
		     len : sizeof(((struct sockaddr_un *)0)->sun_path);
	size_t tail = sizeof(SOCK_SUFFIX);	/* the suffix and its NUL */
	struct out o = { .buf = out, .len = cap > tail ? cap - tail : 0 };
	int ret;

	if (len)
		out[0] = 0;
	if (mnt[0] != '/')
		return -EINVAL;
	if (!put(&o, VDS_CONTROL_DIR "/", sizeof(VDS_CONTROL_DIR)))
		return -ENAMETOOLONG;
	ret = put_components(&o, mnt + strspn(mnt, "/"));
	if (ret) {
		out[o.pos] = 0;
		return ret;
	}
	memcpy(out + o.pos, SOCK_SUFFIX, tail);
	return 0;
}
