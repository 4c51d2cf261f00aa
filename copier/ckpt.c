/* ckpt.c -- resume checkpoints: "<dst_rel>.ckpt" beside the partial copy.
 *
 * Invariant: a checkpoint saying done_off = X is written only after the
 * destination was fdatasync()ed with every data extent below X complete, so
 * a resumed copy may trust [0, X) and redo the rest. The record also names
 * the source (dev, ino, size, mtime): a changed source invalidates it.
 *
 * The record is written to "<name>.tmp" and renamed over the old one, so a
 * reader sees the old or the new record, never a torn mix; the trailing hash
 * rejects anything else (an empty file after a crash, garbage). A missing or
 * rejected checkpoint only costs a restart from zero, never a wrong copy,
 * which is why the checkpoint file itself is not fsync()ed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define CKPT_MAGIC 0x54504b4353445600ull  /* "\0VDSCKPT" */

struct ckpt_rec {
	uint64_t magic;
	struct ckpt c;
	uint64_t hash;
};

int ckpt_name(const char *dst_rel, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s.ckpt", dst_rel);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static uint64_t ckpt_hash(const struct ckpt_rec *r)
{
	return block_hash(r, offsetof(struct ckpt_rec, hash), CKPT_MAGIC);
}

int ckpt_write(int dirfd, const char *dst_rel, const struct ckpt *c)
{
	char name[4096], tmp[4096 + 8];
	struct ckpt_rec r;
	ssize_t w;
	int fd, err = 0;

	if (ckpt_name(dst_rel, name, sizeof(name)))
		return -ENAMETOOLONG;
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	memset(&r, 0, sizeof(r));
	r.magic = CKPT_MAGIC;
	r.c = *c;
	r.hash = ckpt_hash(&r);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	w = write(fd, &r, sizeof(r));
	if (w != (ssize_t)sizeof(r))
		err = w < 0 ? -errno : -EIO;
	if (close(fd) && !err)
		err = -errno;
	if (!err && renameat(dirfd, tmp, dirfd, name))
		err = -errno;
	if (err)
		unlinkat(dirfd, tmp, 0);
	return err;
}

int ckpt_read(int dirfd, const char *dst_rel, struct ckpt *c)
{
	char name[4096];
	struct ckpt_rec r;
	ssize_t n;
	int fd;

	if (ckpt_name(dst_rel, name, sizeof(name)))
		return -ENAMETOOLONG;
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = pread(fd, &r, sizeof(r), 0);
	close(fd);
	if (n != (ssize_t)sizeof(r) || r.magic != CKPT_MAGIC || r.hash != ckpt_hash(&r))
		return -EBADMSG;
	*c = r.c;
	return 0;
}

/* Also removes a ".tmp" a kill between write and rename left behind. */
int ckpt_remove(int dirfd, const char *dst_rel)
{
	char name[4096], tmp[4096 + 8];

	if (ckpt_name(dst_rel, name, sizeof(name)))
		return -ENAMETOOLONG;
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	unlinkat(dirfd, tmp, 0);
	if (unlinkat(dirfd, name, 0) && errno != ENOENT)
		return -errno;
	return 0;
}
