/* create.c - a new differencing file over a base.
 *
 * The file is laid out (two header slots, an empty log at 1 MiB) and two headers
 * are written: generation 0 into slot 0 directly, then generation 1 by an ordinary
 * commit into slot 1.  So a freshly created file has two valid header slots, which
 * is what `vds-diff check` expects of a healthy file; if creation is interrupted
 * the caller just deletes the file (create is durable only once it returns).
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static int check_opts(const struct overlay_create_opts *o, unsigned *shift)
{
	uint32_t bs = o && o->block_size ? o->block_size : OVERLAY_DEFAULT_BLOCK_SIZE;

	if (bs < OVERLAY_MIN_BLOCK_SIZE || bs > OVERLAY_MAX_BLOCK_SIZE || (bs & (bs - 1)))
		return -EINVAL;
	if (o && o->base_uuid && strlen(o->base_uuid) > OVERLAY_UUID_MAX)
		return -ENAMETOOLONG;
	*shift = (unsigned)__builtin_ctz(bs);
	return 0;
}

static int init_meta(struct overlay *ov, const struct overlay_create_opts *o)
{
	struct ov_meta *m = &ov->meta;

	m->version = OV_VERSION;
	m->hdr_len = OV_HDR_LEN;
	m->block_shift = ov->shift;
	m->size = ov->size;
	m->nblocks = ov->nblocks;
	m->data_off = ov->data_off;
	m->chain_head = OV_NO_SLOT;
	m->base_size = ov->base_size;
	if (o && o->base_uuid)
		strcpy(m->uuid, o->base_uuid);
	if (ftruncate(ov->diff_fd, (off_t)m->data_off))
		return -errno;
	return ov_base_fingerprint(ov->base_fd, ov->base_direct, ov->base_size, &m->base_fp);
}

static int layout(struct overlay *ov, const struct overlay_create_opts *o)
{
	struct stat st;
	uint64_t size;

	if (fstat(ov->base_fd, &st))
		return -errno;
	ov->base_size = (uint64_t)st.st_size;
	if (fstat(ov->diff_fd, &st))
		return -errno;
	if (st.st_size != 0)
		return -EEXIST;	/* never overwrite something that may be a live diff */
	size = o && o->size >= 0 ? (uint64_t)o->size : ov->base_size;
	if (size > OV_MAX_SIZE)
		return -EFBIG;
	ov_set_geometry(ov, size);
	return init_meta(ov, o);
}

int overlay_create(int base_fd, int diff_fd, const struct overlay_create_opts *o,
		   struct overlay **out)
{
	struct overlay *ov;
	unsigned shift;
	int ret = check_opts(o, &shift);

	if (ret)
		return ret;
	ret = ov_handle_new(base_fd, diff_fd, shift, &ov);
	if (ret)
		return ret;
	ret = layout(ov, o);
	/* A logical size below the base's: hide the base bytes past it (resize.c). */
	ret = ret ?: ov_seal_tail(ov, ov->size);
	ret = ret ?: ov_write_header(ov, &ov->meta);
	if (!ret) {
		pthread_mutex_lock(&ov->flush_lock);
		ov->repair_header = true;	/* write generation 1 even if the map is empty */
		ret = ov_commit(ov, false);
		pthread_mutex_unlock(&ov->flush_lock);
	}
	if (ret) {
		overlay_close(ov);
		return ret;
	}
	*out = ov;
	return 0;
}
