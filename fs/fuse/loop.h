/* loop.h - the FUSE request loop: N worker threads reading /dev/fuse. */
#ifndef VDS_LOOP_H
#define VDS_LOOP_H

#include <fuse_lowlevel.h>

struct vds_loop;

int loop_start(struct fuse_session *se, unsigned threads, int stop_fd, struct vds_loop **out);
void loop_stop(struct vds_loop *lp);

#endif
