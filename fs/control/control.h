/* control.h - the control socket vdsctl talks to. */
#ifndef VDS_CONTROL_H
#define VDS_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct vds;

int control_open(struct vds *v, const char *path, bool own_dir, char *err, size_t len);
int control_start(struct vds *v);
void control_stop(struct vds *v);

/* control_access.c */
int control_group_resolve(const char *spec, gid_t *gid, char *err, size_t len);
int control_grant(struct vds *v, const char *path, bool own_dir, char *err, size_t len);
bool control_peer_allowed(const struct vds *v, int fd);

#endif
