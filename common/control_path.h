/* control_path.h - where a mount's control socket is when -o control= is not given:
 * /run/vdsfs/<mountpoint with '/' as '-'>.sock. The daemon makes it and vdsctl finds
 * it by the same function, so the two can never disagree. */
#ifndef VDS_CONTROL_PATH_H
#define VDS_CONTROL_PATH_H

#include <stddef.h>

#define VDS_CONTROL_DIR	"/run/vdsfs"

/* mountpoint must be canonical (realpath). -ENAMETOOLONG if it does not fit. */
int control_default_path(const char *mountpoint, char *out, size_t len);

#endif
