/* datastore.h - one backing directory of the namespace.
 *
 * A datastore is opened once at mount time and then only ever reached through its
 * directory fd: every backing operation is an *at() call relative to ds->fd, so no
 * path walk ever starts outside it. Each datastore owns a hidden state folder
 * (VDS_STATE_DIR) that the mount never shows, and a lock file inside it that makes a
 * datastore belong to one vdsfs at a time.
 */
#ifndef VDS_DATASTORE_H
#define VDS_DATASTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VDS_STATE_DIR	".vdsfs"

/* What fallocate(FALLOC_FL_ZERO_RANGE) does on a datastore (zrange.c): works or is
 * refused honestly (NATIVE: pass it through), succeeds without zeroing but punches
 * holes correctly (EMULATE: punch, then allocate), or neither (REFUSE: answer
 * EOPNOTSUPP, as a filesystem without it does; qemu then writes zeros). */
enum ds_zero_range { DS_ZR_NATIVE, DS_ZR_EMULATE, DS_ZR_REFUSE };

struct datastore {
	char name[33];
	char *path;	/* canonical, absolute */
	int fd;		/* O_DIRECTORY on path */
	int state_fd;	/* O_DIRECTORY on path/.vdsfs */
	int lock_fd;	/* holds flock(LOCK_EX) while mounted */
	dev_t dev;
	enum ds_zero_range zero_range;	/* probed once by ds_open */
};

bool path_within(const char *outer, const char *inner);
int ds_check_layout(char *const paths[], const char *const names[], int n,
		    const char *mountpoint, char *err, size_t len);
int ds_canonicalize(const char *name, const char *path, char **out, char *err, size_t len);
int ds_open(struct datastore *ds, const char *name, const char *canon_path, char *err,
	    size_t len);
void ds_close(struct datastore *ds);
void ds_write_pid(struct datastore *ds);
/* Probe the filesystem of the directory state_fd (a scratch file is made and
 * removed there): see enum ds_zero_range. A probe that cannot run answers NATIVE,
 * so the real call reports what is wrong. */
enum ds_zero_range ds_probe_zero_range(int state_fd);

/* fallocate(fd, mode, off, len) for a mode with FALLOC_FL_ZERO_RANGE, on a file of
 * datastore ds, carried out so that the range reads as zeros afterwards: 0 or
 * -errno (-EOPNOTSUPP where the datastore can neither zero nor punch). */
int ds_zero_range(const struct datastore *ds, int fd, int mode, off_t off, off_t len);

int ds_space(const struct datastore *ds, uint64_t *avail, uint64_t *total);
/* 0 if the directory mounted at ds->path is still the one ds->fd opened, else
 * -ENODEV (or -errno). A datastore unmounted under the daemon, even lazily, still
 * answers through its fds, but what lands there is lost once they close. */
int ds_still_there(const struct datastore *ds);

#endif
