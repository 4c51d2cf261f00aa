/* faultfs.c -- a passthrough FUSE filesystem that can fail reads, for tests.
 *
 *   faultfs [--eio-file REL --eio-from N --eio-to M [--when PATH]] BACKING MOUNTPOINT [fuse opts]
 *
 * Serves the directory BACKING at MOUNTPOINT so that it can be one of vdsfs's
 * datastores, and makes reads of one file fail like a disk with bad sectors:
 * a read of the file at REL (relative to BACKING) that touches bytes [N, M)
 * fails with EIO while PATH exists (always, without --when). PATH lives
 * outside the mount and should be absolute, so a test switches the fault on
 * and off with a file of its own and never has to time anything. The file is
 * the inode found at REL when the read arrives, so the fault holds for every
 * handle of it, whatever path or fd it was opened by.
 *
 * Rules:
 *  - everything else passes through unchanged: errors are the backing
 *    filesystem's own, and open flags (O_DIRECT included) reach the backing
 *    open as given;
 *  - nothing is cached in the kernel: every open is direct_io and the entry
 *    and attribute timeouts are 0, so every read reaches the fault check (a
 *    page cached by an earlier good read would otherwise hide the fault) and
 *    what the mount shows is what BACKING holds;
 *  - unlink is a real unlink (hard_remove): no .fuse_hidden files appear
 *    beside a file that was removed while open, as none would on a local
 *    filesystem;
 *  - locks (flock, POSIX, OFD) are left to the kernel, which keeps them for
 *    the mount as it does for a local filesystem.
 */
#define FUSE_USE_VERSION 35
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#define DIO_ALIGN	4096

static struct faultfs {
	char *backing;
	char *eio_file;
	char *when;
	unsigned long long eio_from, eio_to;
	int root_fd;
} fault = { .root_fd = -1 };

/* libfuse's paths start with '/'; the *at() calls want them relative to the root. */
static const char *rel(const char *path)
{
	return path[1] ? path + 1 : ".";
}

/* There are no *xattrat() calls (nor truncateat()) in glibc 2.36: such calls name
 * the file through the root's fd instead, which works wherever we were started. */
static int proc_path(char *buf, size_t len, const char *path)
{
	int n = snprintf(buf, len, "/proc/self/fd/%d/%s", fault.root_fd, rel(path));

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static bool fault_hits(int fd, off_t off, size_t len)
{
	struct stat bad, st;

	if (!fault.eio_file || len == 0 || (unsigned long long)off >= fault.eio_to ||
	    (unsigned long long)off + len <= fault.eio_from)
		return false;
	if (fault.when && access(fault.when, F_OK) < 0)
		return false;
	return fstatat(fault.root_fd, fault.eio_file, &bad, AT_SYMLINK_NOFOLLOW) == 0 &&
	       fstat(fd, &st) == 0 && st.st_dev == bad.st_dev && st.st_ino == bad.st_ino;
}

/* The buffers libfuse hands us are not aligned (a WRITE payload starts 80 bytes
 * into its page), which a backing fd opened O_DIRECT refuses with EINVAL: such
 * I/O goes through an aligned bounce buffer. Offset and length stay the caller's,
 * so a misaligned O_DIRECT request still fails as it would on the backing fs. */
static char *bounce_for(int fd, char *buf, size_t len)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || !(fl & O_DIRECT) || (uintptr_t)buf % DIO_ALIGN == 0)
		return buf;
	return aligned_alloc(DIO_ALIGN, (len / DIO_ALIGN + 1) * DIO_ALIGN);
}

static void *faultfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	cfg->use_ino = 1;	/* vdsfs compares inode numbers of what it opened */
	cfg->hard_remove = 1;
	cfg->nullpath_ok = 1;	/* fd-based ops never need a path, and may get none */
	cfg->entry_timeout = cfg->attr_timeout = cfg->negative_timeout = 0;
	return NULL;
}

static int faultfs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	int ret = fi ? fstat(fi->fh, st) : fstatat(fault.root_fd, rel(path), st, AT_SYMLINK_NOFOLLOW);

	return ret < 0 ? -errno : 0;
}

static int faultfs_readlink(const char *path, char *buf, size_t len)
{
	ssize_t n = readlinkat(fault.root_fd, rel(path), buf, len - 1);

	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

static int faultfs_mknod(const char *path, mode_t mode, dev_t rdev)
{
	return mknodat(fault.root_fd, rel(path), mode, rdev) < 0 ? -errno : 0;
}

static int faultfs_mkdir(const char *path, mode_t mode)
{
	return mkdirat(fault.root_fd, rel(path), mode) < 0 ? -errno : 0;
}

static int faultfs_unlink(const char *path)
{
	return unlinkat(fault.root_fd, rel(path), 0) < 0 ? -errno : 0;
}

static int faultfs_rmdir(const char *path)
{
	return unlinkat(fault.root_fd, rel(path), AT_REMOVEDIR) < 0 ? -errno : 0;
}

static int faultfs_symlink(const char *target, const char *path)
{
	return symlinkat(target, fault.root_fd, rel(path)) < 0 ? -errno : 0;
}

static int faultfs_rename(const char *from, const char *to, unsigned int flags)
{
	return renameat2(fault.root_fd, rel(from), fault.root_fd, rel(to), flags) < 0 ? -errno : 0;
}

static int faultfs_link(const char *from, const char *to)
{
	return linkat(fault.root_fd, rel(from), fault.root_fd, rel(to), 0) < 0 ? -errno : 0;
}

static int faultfs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	int ret = fi ? fchmod(fi->fh, mode) : fchmodat(fault.root_fd, rel(path), mode, 0);

	return ret < 0 ? -errno : 0;
}

static int faultfs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	int ret = fi ? fchown(fi->fh, uid, gid) :
		  fchownat(fault.root_fd, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW);

	return ret < 0 ? -errno : 0;
}

static int faultfs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	char p[PATH_MAX + 32];
	int ret;

	if (fi)
		return ftruncate(fi->fh, size) < 0 ? -errno : 0;
	ret = proc_path(p, sizeof(p), path);
	return ret ? ret : truncate(p, size) < 0 ? -errno : 0;
}

static int faultfs_utimens(const char *path, const struct timespec ts[2],
			   struct fuse_file_info *fi)
{
	int ret = fi ? futimens(fi->fh, ts) :
		  utimensat(fault.root_fd, rel(path), ts, AT_SYMLINK_NOFOLLOW);

	return ret < 0 ? -errno : 0;
}

static int faultfs_open(const char *path, struct fuse_file_info *fi)
{
	int fd = openat(fault.root_fd, rel(path), fi->flags | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	fi->fh = fd;
	fi->direct_io = 1;
	return 0;
}

static int faultfs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	int fd = openat(fault.root_fd, rel(path), fi->flags | O_CLOEXEC, mode);

	if (fd < 0)
		return -errno;
	fi->fh = fd;
	fi->direct_io = 1;
	return 0;
}

static int faultfs_read(const char *path, char *buf, size_t len, off_t off,
			struct fuse_file_info *fi)
{
	char *b;
	ssize_t n;
	int err;

	(void)path;
	if (fault_hits(fi->fh, off, len))
		return -EIO;
	b = bounce_for(fi->fh, buf, len);
	if (!b)
		return -ENOMEM;
	n = pread(fi->fh, b, len, off);
	err = errno;
	if (b != buf) {
		if (n > 0)
			memcpy(buf, b, n);
		free(b);
	}
	return n < 0 ? -err : (int)n;
}

static int faultfs_write(const char *path, const char *buf, size_t len, off_t off,
			 struct fuse_file_info *fi)
{
	char *b;
	ssize_t n;
	int err;

	(void)path;
	b = bounce_for(fi->fh, (char *)buf, len);
	if (!b)
		return -ENOMEM;
	if (b != buf)
		memcpy(b, buf, len);
	n = pwrite(fi->fh, b, len, off);
	err = errno;
	if (b != buf)
		free(b);
	return n < 0 ? -err : (int)n;
}

static int faultfs_statfs(const char *path, struct statvfs *sv)
{
	(void)path;
	return fstatvfs(fault.root_fd, sv) < 0 ? -errno : 0;
}

static int faultfs_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	close(fi->fh);
	return 0;
}

static int faultfs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	return (datasync ? fdatasync(fi->fh) : fsync(fi->fh)) < 0 ? -errno : 0;
}

static int faultfs_setxattr(const char *path, const char *name, const char *val, size_t len,
			    int flags)
{
	char p[PATH_MAX + 32];
	int ret = proc_path(p, sizeof(p), path);

	return ret ? ret : lsetxattr(p, name, val, len, flags) < 0 ? -errno : 0;
}

static int faultfs_getxattr(const char *path, const char *name, char *val, size_t len)
{
	char p[PATH_MAX + 32];
	int ret = proc_path(p, sizeof(p), path);
	ssize_t n;

	if (ret)
		return ret;
	n = lgetxattr(p, name, val, len);
	return n < 0 ? -errno : (int)n;
}

static int faultfs_listxattr(const char *path, char *list, size_t len)
{
	char p[PATH_MAX + 32];
	int ret = proc_path(p, sizeof(p), path);
	ssize_t n;

	if (ret)
		return ret;
	n = llistxattr(p, list, len);
	return n < 0 ? -errno : (int)n;
}

static int faultfs_removexattr(const char *path, const char *name)
{
	char p[PATH_MAX + 32];
	int ret = proc_path(p, sizeof(p), path);

	return ret ? ret : lremovexattr(p, name) < 0 ? -errno : 0;
}

/* A directory handle is a DIR *, so fsyncdir has an fd to sync. */
static int faultfs_opendir(const char *path, struct fuse_file_info *fi)
{
	int fd = openat(fault.root_fd, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	fi->fh = (uintptr_t)d;
	return 0;
}

/* Whole directory in one call (offsets 0): libfuse keeps it for the later reads
 * of this handle and calls again from the start only on a rewind. */
static int faultfs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
			   struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	DIR *d = (DIR *)(uintptr_t)fi->fh;
	struct dirent *de;

	(void)path;
	(void)off;
	(void)flags;
	rewinddir(d);
	errno = 0;
	while ((de = readdir(d))) {
		struct stat st = { .st_ino = de->d_ino, .st_mode = DTTOIF(de->d_type) };

		if (fill(buf, de->d_name, &st, 0, 0))
			return -ENOMEM;
	}
	return errno ? -errno : 0;
}

static int faultfs_releasedir(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	closedir((DIR *)(uintptr_t)fi->fh);
	return 0;
}

static int faultfs_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
	int fd = dirfd((DIR *)(uintptr_t)fi->fh);

	(void)path;
	return (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? -errno : 0;
}

static int faultfs_fallocate(const char *path, int mode, off_t off, off_t len,
			     struct fuse_file_info *fi)
{
	(void)path;
	return fallocate(fi->fh, mode, off, len) < 0 ? -errno : 0;
}

static off_t faultfs_lseek(const char *path, off_t off, int whence, struct fuse_file_info *fi)
{
	off_t r = lseek(fi->fh, off, whence);

	(void)path;
	return r < 0 ? -errno : r;
}

static const struct fuse_operations faultfs_ops = {
	.init = faultfs_init,
	.getattr = faultfs_getattr,
	.readlink = faultfs_readlink,
	.mknod = faultfs_mknod,
	.mkdir = faultfs_mkdir,
	.unlink = faultfs_unlink,
	.rmdir = faultfs_rmdir,
	.symlink = faultfs_symlink,
	.rename = faultfs_rename,
	.link = faultfs_link,
	.chmod = faultfs_chmod,
	.chown = faultfs_chown,
	.truncate = faultfs_truncate,
	.utimens = faultfs_utimens,
	.open = faultfs_open,
	.create = faultfs_create,
	.read = faultfs_read,
	.write = faultfs_write,
	.statfs = faultfs_statfs,
	.release = faultfs_release,
	.fsync = faultfs_fsync,
	.setxattr = faultfs_setxattr,
	.getxattr = faultfs_getxattr,
	.listxattr = faultfs_listxattr,
	.removexattr = faultfs_removexattr,
	.opendir = faultfs_opendir,
	.readdir = faultfs_readdir,
	.releasedir = faultfs_releasedir,
	.fsyncdir = faultfs_fsyncdir,
	.fallocate = faultfs_fallocate,
	.lseek = faultfs_lseek,
};

#define FAULTFS_OPT(t, m) { t, offsetof(struct faultfs, m), 0 }

static const struct fuse_opt faultfs_opts[] = {
	FAULTFS_OPT("--eio-file %s", eio_file),
	FAULTFS_OPT("--eio-from %llu", eio_from),
	FAULTFS_OPT("--eio-to %llu", eio_to),
	FAULTFS_OPT("--when %s", when),
	FUSE_OPT_END
};

/* The first non-option is the backing directory; the mountpoint is libfuse's. */
static int faultfs_opt(void *data, const char *arg, int key, struct fuse_args *out)
{
	struct faultfs *f = data;

	(void)out;
	if (key != FUSE_OPT_KEY_NONOPT || f->backing)
		return 1;
	f->backing = strdup(arg);
	return 0;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	int ret = 1;

	if (fuse_opt_parse(&args, &fault, faultfs_opts, faultfs_opt) < 0)
		goto out;
	if (!fault.backing || (fault.eio_file && fault.eio_from >= fault.eio_to)) {
		fprintf(stderr, "usage: %s [--eio-file REL --eio-from N --eio-to M [--when PATH]] "
			"BACKING MOUNTPOINT [fuse options]  (N < M)\n", argv[0]);
		goto out;
	}
	/* Opened before the mount: BACKING may even be the mountpoint itself. */
	fault.root_fd = open(fault.backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fault.root_fd < 0) {
		perror(fault.backing);
		goto out;
	}
	if (fault.eio_file)
		while (fault.eio_file[0] == '/')
			memmove(fault.eio_file, fault.eio_file + 1, strlen(fault.eio_file));
	ret = fuse_main(args.argc, args.argv, &faultfs_ops, NULL);
	close(fault.root_fd);
out:
	fuse_opt_free_args(&args);
	free(fault.backing);
	free(fault.eio_file);
	free(fault.when);
	return ret;
}
