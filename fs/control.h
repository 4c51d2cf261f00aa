/* control.h - the control socket vdsctl talks to. */
#ifndef VDS_CONTROL_H
#define VDS_CONTROL_H

#include <stddef.h>

struct vds;

int control_default_path(const char *mountpoint, char *out, size_t len);
int control_open(struct vds *v, const char *path, char *err, size_t len);
int control_start(struct vds *v);
void control_stop(struct vds *v);

#endif
