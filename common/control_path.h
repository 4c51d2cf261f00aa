/* control_path.h - where a mount's control socket is when -o control= is not given:
 * /run/vdsfs/<mountpoint escaped as `systemd-escape --path` does>.sock, e.g.
 * /run/vdsfs/var-lib-vdsfs.sock for /var/lib/vdsfs. The escaping is one-to-one, so
 * two mountpoints never share a socket (/srv/vm-a is srv-vm\x2da, /srv/vm/a is
 * srv-vm-a), and it is the convention admins already read in unit names. The daemon
 * makes the socket and vdsctl finds it by this one function, so they never disagree.
 */
#ifndef VDS_CONTROL_PATH_H
#define VDS_CONTROL_PATH_H

#include <stddef.h>

#define VDS_CONTROL_DIR	"/run/vdsfs"

/* Write the default control socket path of mountpoint into out (len bytes).
 *
 * mountpoint must be absolute and normalised (realpath gives that): repeated and
 * trailing '/' are accepted, "." and ".." components are not, since they would name
 * one directory by two socket names.
 * Returns 0, -EINVAL for a relative or unnormalised path, or -ENAMETOOLONG when the
 * result does not fit in out or in a Unix socket address (sun_path, 108 bytes);
 * out is then an unspecified, terminated string. */
int control_default_path(const char *mountpoint, char *out, size_t len);

#endif
