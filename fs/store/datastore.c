/* datastore.c - validate, open and lock the backing directories.
 *
 * Layout rules (checked on canonical paths, so symlinks and ".." cannot hide a
 * violation): no two datastores are the same directory or nested in each other, and
 * none contains or is contained in the mountpoint; a datastore inside the mount would
 * make the filesystem read itself and deadlock.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <syslog.h>
#include <unistd.h>

#include "datastore.h"
#include "log.h"
#include "errmsg.h"

/* True if inner is outer or lies below it. Both must be canonical. */
bool path_within(const char *outer, const char *inner)
{
	size_t n = strlen(outer);

	if (n == 1 && outer[0] == '/')
		return true;
	return !strncmp(outer, inner, n) && (inner[n] == 0 || inner[n] == '/');
}

int ds_check_layout(char *const paths[], const char *const names[], int n,
		    const char *mnt, char *err, size_t len)
{
	for (int i = 0; i < n; i++) {
		if (path_within(mnt, paths[i]))
			return vds_err(err, len, -EINVAL, "datastore %s (%s) is inside the mountpoint %s",
				    names[i], paths[i], mnt);
		if (path_within(paths[i], mnt))
			return vds_err(err, len, -EINVAL, "mountpoint %s is inside datastore %s (%s)",
				    mnt, names[i], paths[i]);
		for (int j = 0; j < n; j++) {
			if (i == j || !path_within(paths[i], paths[j]))
				continue;
			if (!strcmp(paths[i], paths[j]))
				return vds_err(err, len, -EINVAL, "datastores %s and %s are the same directory %s",
					    names[i], names[j], paths[i]);
			return vds_err(err, len, -EINVAL, "datastore %s (%s) is inside datastore %s (%s)",
				    names[j], paths[j], names[i], paths[i]);
		}
	}
	return 0;
}

int ds_canonicalize(const char *name, const char *path, char **out, char *err, size_t len)
{
	struct stat st;
	char *canon = realpath(path, NULL);

	if (!canon)
		return vds_err(err, len, -errno, "datastore %s: %s: %s", name, path, strerror(errno));
	if (stat(canon, &st) < 0 || !S_ISDIR(st.st_mode)) {
		free(canon);
		return vds_err(err, len, -ENOTDIR, "datastore %s: %s is not a directory", name, path);
	}
	*out = canon;
	return 0;
}

static int ds_lock(struct datastore *ds, char *err, size_t len)
{
	char pid[32];
	int n;

	ds->lock_fd = openat(ds->state_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (ds->lock_fd < 0)
		return vds_err(err, len, -errno, "datastore %s: cannot open %s/%s/lock: %s", ds->name,
			    ds->path, VDS_STATE_DIR, strerror(errno));
	if (flock(ds->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		n = pread(ds->lock_fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = 0;
		pid[strcspn(pid, "\n")] = 0;
		return vds_err(err, len, -EBUSY, "datastore %s (%s) is already served by another vdsfs (pid %s)",
			    ds->name, ds->path, n > 0 ? pid : "?");
	}
	return 0;
}

/* Called after fork by the daemon: the lock file names its owner for humans. */
void ds_write_pid(struct datastore *ds)
{
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());

	if (ftruncate(ds->lock_fd, 0) == 0 && pwrite(ds->lock_fd, pid, n, 0) != n)
		return;
}

int ds_open(struct datastore *ds, const char *name, const char *canon, char *err, size_t len)
{
	struct stat st;

	memset(ds, 0, sizeof(*ds));
	ds->fd = ds->state_fd = ds->lock_fd = -1;
	snprintf(ds->name, sizeof(ds->name), "%s", name);
	ds->path = strdup(canon);
	ds->fd = open(canon, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ds->fd < 0 || fstat(ds->fd, &st) < 0)
		return vds_err(err, len, -errno, "datastore %s: cannot open %s: %s", name, canon,
			    strerror(errno));
	ds->dev = st.st_dev;
	if (mkdirat(ds->fd, VDS_STATE_DIR, 0700) < 0 && errno != EEXIST)
		return vds_err(err, len, -errno, "datastore %s: cannot create %s/%s: %s", name, canon,
			    VDS_STATE_DIR, strerror(errno));
	ds->state_fd = openat(ds->fd, VDS_STATE_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (ds->state_fd < 0)
		return vds_err(err, len, -errno, "datastore %s: %s/%s is not a directory", name, canon,
			    VDS_STATE_DIR);
	int ret = ds_lock(ds, err, len);
	if (!ret) {
		ds_write_pid(ds);
		ds->zero_range = ds_probe_zero_range(ds->state_fd);
		if (ds->zero_range != DS_ZR_NATIVE)
			vds_log(LOG_WARNING, "vdsfs: datastore %s (%s): fallocate(ZERO_RANGE) succeeds "
				"without zeroing here; vdsfs %s\n", ds->name, ds->path,
				ds->zero_range == DS_ZR_EMULATE ? "punches a hole and allocates instead"
							       : "answers EOPNOTSUPP instead");
	}
	return ret;
}

void ds_close(struct datastore *ds)
{
	if (ds->lock_fd >= 0)
		close(ds->lock_fd);
	if (ds->state_fd >= 0)
		close(ds->state_fd);
	if (ds->fd >= 0)
		close(ds->fd);
	free(ds->path);
	ds->path = NULL;
	ds->fd = ds->state_fd = ds->lock_fd = -1;
}

int ds_space(const struct datastore *ds, uint64_t *avail, uint64_t *total)
{
	struct statvfs sv;

	if (fstatvfs(ds->fd, &sv) < 0)
		return -errno;
	*avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	if (total)
		*total = (uint64_t)sv.f_blocks * sv.f_frsize;
	return 0;
}

int ds_still_there(const struct datastore *ds)
{
	struct stat a, b;

	if (stat(ds->path, &a) < 0 || fstat(ds->fd, &b) < 0)
		return -errno;
	return (a.st_dev == b.st_dev && a.st_ino == b.st_ino) ? 0 : -ENODEV;
}
