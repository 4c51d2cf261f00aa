/* control_access.c - who may talk to the control socket.
 *
 * Two locks on one door. The file system keeps strangers from connecting at all (the
 * socket's mode and owner, and its directory's search bit), and SO_PEERCRED checks who
 * did connect, since a connected socket can be handed to anyone. Allowed peers: root,
 * the daemon's own user, and with -o control_group=G every process whose primary or
 * supplementary groups include G (SO_PEERGROUPS gives the latter).
 *
 * Without a group the socket is 0600 in a 0700 directory. With one it is 0660 and
 * owned by G, and G must be able to search its directory: vdsfs's own default
 * directory (/run/vdsfs) is made 0711, since it holds nothing but sockets that guard
 * themselves; a directory the administrator chose is checked, never changed, and a
 * group that could not reach the socket is refused at startup with the reason.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"

#define PEER_GROUPS_MAX	256

/* A group name from /etc/group (or NSS), or a numeric id. */
int control_group_resolve(const char *spec, gid_t *gid, char *err, size_t len)
{
	char buf[4096], *end;
	struct group gr, *res = NULL;
	unsigned long id = strtoul(spec, &end, 10);

	if (*spec && !*end && id < (gid_t)-1) {
		*gid = (gid_t)id;
		return 0;
	}
	if (getgrnam_r(spec, &gr, buf, sizeof(buf), &res) || !res) {
		snprintf(err, len, "control_group=%s: no such group", spec);
		return -ENOENT;
	}
	*gid = res->gr_gid;
	return 0;
}

static int dir_of(const char *path, char *dir, size_t len)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash == path ? 1 : (size_t)(slash - path);

	if (!slash || n >= len)
		return -EINVAL;
	memcpy(dir, path, n);
	dir[n] = 0;
	return 0;
}

static bool group_can_search(const struct stat *st, gid_t gid)
{
	return st->st_gid == gid ? st->st_mode & S_IXGRP : st->st_mode & S_IXOTH;
}

/* Sets the socket's mode (and group); own_dir: the directory is vdsfs's default. */
int control_grant(struct control *c, const char *path, bool own_dir, char *err, size_t len)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct stat st;

	if (!c->group)
		return chmod(path, 0600) < 0 ? -errno : 0;
	if (chown(path, (uid_t)-1, c->gid) < 0 || chmod(path, 0660) < 0)
		return -errno;
	if (dir_of(path, dir, sizeof(dir)))
		return -EINVAL;
	if (stat(dir, &st) < 0)
		return -errno;
	if (own_dir && !group_can_search(&st, c->gid) && chmod(dir, 0711) < 0)
		return -errno;
	if (own_dir || group_can_search(&st, c->gid))
		return 0;
	snprintf(err, len, "control_group: group %u cannot search %s (mode %04o); "
		 "give it the group or o+x", (unsigned)c->gid, dir, st.st_mode & 07777);
	return -EACCES;
}

static bool peer_in_group(int fd, gid_t gid)
{
	gid_t groups[PEER_GROUPS_MAX];
	socklen_t l = sizeof(groups);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &l) < 0)
		return false;	/* more groups than we take: refuse, never guess */
	for (size_t i = 0; i < l / sizeof(gid_t); i++)
		if (groups[i] == gid)
			return true;
	return false;
}

bool control_peer_allowed(const struct control *c, int fd)
{
	struct ucred cr;
	socklen_t l = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0)
		return false;
	if (cr.uid == 0 || cr.uid == geteuid())
		return true;
	return c->group && (cr.gid == c->gid || peer_in_group(fd, c->gid));
}
