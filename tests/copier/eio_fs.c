/* eio_fs.c -- a FUSE filesystem with one failing file, for copier tests.
 *
 * "/bad.img" is 8 MiB; reads below 4 MiB return a byte pattern, reads that
 * reach 4 MiB or beyond fail with EIO, like a disk with bad sectors. Nothing
 * is writable. Used by eio-src.sh: the copier must fail with a clear read
 * error, leave nothing that looks complete, and never write to the source.
 */
#define FUSE_USE_VERSION 35
#include <errno.h>
#include <fuse.h>
#include <string.h>
#include <sys/stat.h>

#define BAD_SIZE (8 << 20)
#define BAD_FROM (4 << 20)

static int eio_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	memset(st, 0, sizeof(*st));
	if (!strcmp(path, "/")) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (strcmp(path, "/bad.img"))
		return -ENOENT;
	st->st_mode = S_IFREG | 0644;
	st->st_nlink = 1;
	st->st_size = BAD_SIZE;
	st->st_blocks = BAD_SIZE / 512;
	return 0;
}

static int eio_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		       struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	(void)flags;
	if (strcmp(path, "/"))
		return -ENOENT;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, "bad.img", NULL, 0, 0);
	return 0;
}

static int eio_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, "/bad.img"))
		return -ENOENT;
	return (fi->flags & O_ACCMODE) == O_RDONLY ? 0 : -EROFS;
}

static int eio_read(const char *path, char *buf, size_t len, off_t off,
		    struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	if (off >= BAD_SIZE)
		return 0;
	if ((off_t)(off + len) > BAD_SIZE)
		len = (size_t)(BAD_SIZE - off);
	if (off + (off_t)len > BAD_FROM)
		return -EIO;
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)(1 + (off + (off_t)i) % 251);
	return (int)len;
}

static const struct fuse_operations eio_ops = {
	.getattr = eio_getattr,
	.readdir = eio_readdir,
	.open = eio_open,
	.read = eio_read,
};

int main(int argc, char **argv)
{
	return fuse_main(argc, argv, &eio_ops, NULL);
}
