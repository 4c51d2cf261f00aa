/* handle.c - lifetime of a struct overlay and the small queries on it.
 *
 * The rwlock prefers writers: resize and merge begin/end must get in even while
 * many threads keep reading and writing.  Consequence: no code path may take
 * io_lock shared twice in one thread (a waiting writer would deadlock it), so the
 * internal *_locked helpers assume the caller already holds it.
 */
#include <stdlib.h>

#include "internal.h"

int ov_handle_new(int base_fd, int diff_fd, unsigned shift, struct overlay **out)
{
	struct overlay *ov = calloc(1, sizeof(*ov));
	pthread_rwlockattr_t a;

	if (!ov)
		return -ENOMEM;
	ov->base_fd = base_fd;
	ov->diff_fd = diff_fd;
	ov->base_direct = base_fd >= 0 && ov_fd_direct(base_fd);
	ov->diff_direct = ov_fd_direct(diff_fd);
	ov->shift = shift;
	ov->bs = 1u << shift;
	ov->data_off = ov_data_off(ov->bs);
	ov->zero_block = ov_alloc(ov->bs);
	if (!ov->zero_block || ov_map_init(ov)) {
		ov_map_free(ov);
		free(ov->zero_block);
		free(ov);
		return -ENOMEM;
	}
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&ov->io_lock, &a);
	pthread_rwlockattr_destroy(&a);
	for (unsigned i = 0; i < OV_STRIPES; i++)
		pthread_mutex_init(&ov->stripe[i], NULL);
	pthread_mutex_init(&ov->flush_lock, NULL);
	pthread_mutex_init(&ov->leaf_lock, NULL);
	pthread_mutex_init(&ov->alloc_lock, NULL);
	*out = ov;
	return 0;
}

/* Nothing to allocate: the map is sparse and the log does not depend on the size. */
void ov_set_geometry(struct overlay *ov, uint64_t size)
{
	atomic_store(&ov->size, size);
	ov->nblocks = (size + ov->bs - 1) >> ov->shift;
}

void overlay_close(struct overlay *ov)
{
	if (!ov)
		return;
	free(ov->merge);
	for (unsigned i = 0; i < OV_STRIPES; i++)
		pthread_mutex_destroy(&ov->stripe[i]);
	pthread_mutex_destroy(&ov->flush_lock);
	pthread_mutex_destroy(&ov->leaf_lock);
	pthread_mutex_destroy(&ov->alloc_lock);
	pthread_rwlock_destroy(&ov->io_lock);
	ov_map_free(ov);
	free(ov->free);
	ov_vec_free(&ov->pending);
	ov_vec_free(&ov->chain);
	free(ov->zero_block);
	ov_meta_free(&ov->meta);
	free(ov);
}

/* Bytes this handle holds on the heap (approximate to malloc's own overhead):
 * what the daemon reports as the overlay's memory. */
static uint64_t mem_bytes(struct overlay *ov)
{
	uint64_t n = sizeof(*ov) + ov->bs + atomic_load(&ov->mem_map);

	pthread_mutex_lock(&ov->alloc_lock);
	n += ov->free_cap * sizeof(struct ov_ext) + ov->pending.cap * 8;
	pthread_mutex_unlock(&ov->alloc_lock);
	return n + ov->chain.cap * 8;
}

void overlay_stats(struct overlay *ov, struct overlay_stats *st)
{
	memset(st, 0, sizeof(*st));
	pthread_rwlock_rdlock(&ov->io_lock);
	st->size = ov->size;
	st->nblocks = ov->nblocks;
	pthread_rwlock_unlock(&ov->io_lock);
	st->base_size = ov->base_size;
	st->block_size = ov->bs;
	st->data_blocks = atomic_load(&ov->ndata);
	st->zero_blocks = atomic_load(&ov->nzero);
	st->data_bytes = st->data_blocks << ov->shift;
	pthread_mutex_lock(&ov->flush_lock);
	st->gen = ov->meta.gen;
	st->flags = ov->meta.flags;
	st->version = ov->meta.version;
	memcpy(st->base_uuid, ov->meta.uuid, sizeof(st->base_uuid));
	st->mem_bytes = mem_bytes(ov);
	pthread_mutex_unlock(&ov->flush_lock);
	pthread_mutex_lock(&ov->alloc_lock);
	st->log_blocks = atomic_load(&ov->log_end);
	st->free_blocks = ov->free_blocks;
	pthread_mutex_unlock(&ov->alloc_lock);
}

uint32_t overlay_block_size(const struct overlay *ov)
{
	return ov->bs;
}

const char *overlay_state_name(enum overlay_state s)
{
	switch (s) {
	case OVERLAY_BASE: return "base";
	case OVERLAY_DATA: return "data";
	case OVERLAY_ZERO: return "zero";
	}
	return "invalid";
}
