/* internal.h - what the overlay's source files share; not installed.
 *
 * Layout of a differencing file (details in FORMAT.md):
 *   [0, 64K)        header slot 0      } two copies; commit gen g goes to slot g & 1
 *   [64K, 128K)     header slot 1      }
 *   [1M, ...)       block b at data_off + b * block_size (sparse: same offsets)
 *   [map_off, ...)  map page p, slot s at map_off + (2p + s) * 4096
 *
 * In memory the map is 2 bits per block packed into 64-bit words (32 blocks a
 * word), exactly the payload encoding of the on-disk map pages, so flushing a page
 * is a copy.  Words are updated with compare-and-swap so blocks that share a word
 * but not a stripe lock never lose each other's updates, and readers never see an
 * intermediate value.
 */
#ifndef VDS_OVERLAY_INTERNAL_H
#define VDS_OVERLAY_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "overlay.h"

#define OV_MAGIC "VDSDIFF\0"
#define OV_VERSION 1u
#define OV_HDR_SLOT (64u << 10)
#define OV_HDR_FIXED 256u
#define OV_HDR_AREA (2u * OV_HDR_SLOT)
#define OV_DATA_ALIGN (1u << 20)	/* data_off: FORMAT.md */
#define OV_PAGE_SIZE 4096u
#define OV_PAGE_HDR 32u
#define OV_PAGE_WORDS ((OV_PAGE_SIZE - OV_PAGE_HDR) / 8)	/* 508 */
#define OV_BLOCKS_PER_WORD 32u
#define OV_BLOCKS_PER_PAGE (OV_PAGE_WORDS * OV_BLOCKS_PER_WORD)	/* 16256 */
#define OV_MAX_PAGES ((uint64_t)(OV_HDR_SLOT - OV_HDR_FIXED) * 4)
#define OV_PAGE_MAGIC 0x4d534456u	/* "VDSM" little endian */
#define OV_ALIGN 4096u			/* O_DIRECT-safe alignment */
#define OV_STRIPES 256u

/* Header flags. */
#define OV_FLAG_BASE_DIRTY (1u << 0)	/* a merge onto the base has started */
#define OV_FLAGS_KNOWN OV_FLAG_BASE_DIRTY

/* Directory entry (2 bits per map page): which slot holds the page. */
enum { OV_DIR_NONE = 0, OV_DIR_SLOT0 = 1, OV_DIR_SLOT1 = 2 };

/* A decoded header.  dir is owned (malloc) and holds npages 2-bit entries. */
struct ov_meta {
	uint32_t version, hdr_len, flags, block_shift;
	uint64_t gen, size, nblocks, data_off, map_off, npages;
	uint64_t base_size, ndata, nzero;
	uint32_t base_fp;
	char uuid[OVERLAY_UUID_MAX + 1];
	uint8_t *dir;
};

struct ov_retired {
	void *p;
	struct ov_retired *next;
};

/* Block counts of one map page as committed; the header's totals are their sums. */
struct ov_pcount {
	uint16_t nd, nz;
};

struct overlay_merge {
	struct overlay *ov;
	int target_fd;
	bool target_is_base, target_direct;
	_Atomic uint64_t *dirty;	/* 1 bit per block; set after a change lands */
	uint64_t nbits;
};

struct overlay {
	int base_fd, diff_fd;
	bool base_direct, diff_direct, rdonly;
	uint32_t bs;
	unsigned shift;

	/* io_lock: shared by every I/O path except overlay_read (write, discard,
	 * flush, merge pass, iteration); exclusive for resize and merge begin/end.  It
	 * guards the geometry below (size, nblocks, map, page_dirty, npages) and the
	 * merge pointer: these only change while no writer runs. */
	pthread_rwlock_t io_lock;
	_Atomic uint64_t size;
	uint64_t nblocks, npages;
	_Atomic uint64_t *_Atomic map;	/* 2 bits per block, CAS-updated; map[-1] holds
					 * the array's length in words (ov_map_words) */

	/* overlay_read takes no lock at all: it samples geo_seq (even = stable), reads,
	 * and retries if geo_seq moved; resize makes it odd while it changes size and
	 * map.  Old map arrays are kept on `retired` until close, so a reader racing a
	 * resize never touches freed memory; its result is simply discarded. */
	_Atomic unsigned long geo_seq;
	struct ov_retired *retired;

	uint64_t base_size, data_off;	/* constant after create/open */
	_Atomic uint8_t *page_dirty;	/* page changed since its last commit */
	struct overlay_merge *merge;

	/* Counters follow every state change (atomic, any thread). */
	_Atomic uint64_t ndata, nzero;

	/* stripe[b % OV_STRIPES] serialises state transitions of block b (base or
	 * zero -> data with a fill, data -> zero) and every write when the diff is
	 * O_DIRECT.  Overwrites of a block already in DATA state take no lock. */
	pthread_mutex_t stripe[OV_STRIPES];
	uint8_t *zero_block;		/* bs zero bytes, aligned, read-only */

	/* flush_lock: one commit at a time; guards meta (the committed header,
	 * including its directory).  Order: io_lock before flush_lock. */
	pthread_mutex_t flush_lock;
	struct ov_meta meta;
	unsigned want_flags;		/* header flags for the next commit */
	bool need_relocate;		/* geometry changed but not yet committed */
	bool repair_header;		/* older header slot is damaged: rewrite it */
	struct ov_pcount *pcount;	/* per map page, as last committed */
};

/* crc32c.c */
uint32_t ov_crc32c(uint32_t crc, const void *buf, size_t len);

/* io.c: whole-buffer pread/pwrite with EINTR/short-count handling.  Reads past
 * EOF return zeros.  When direct is set the I/O is kept 4 KiB aligned. */
int ov_pread(int fd, bool direct, void *buf, size_t len, uint64_t off);
int ov_pwrite(int fd, bool direct, const void *buf, size_t len, uint64_t off);
void *ov_alloc(size_t len);	/* OV_ALIGN-aligned, zeroed */
bool ov_fd_direct(int fd);
int ov_punch(int fd, uint64_t off, uint64_t len);
int ov_zero_range(int fd, bool direct, uint64_t off, uint64_t len);

/* format.c: pure encoders/decoders (no I/O); the fuzz target drives these. */
void ov_header_encode(const struct ov_meta *m, uint8_t *slot);
int ov_header_decode(const uint8_t *slot, size_t len, struct ov_meta *m,
		     char *why, size_t why_len);
void ov_page_encode(uint8_t *page, uint64_t index, uint64_t gen,
		    const _Atomic uint64_t *words, uint64_t *nd, uint64_t *nz);
int ov_page_decode(const uint8_t *page, uint64_t index, uint64_t max_gen,
		   uint64_t nblocks_in_page, uint64_t *words, char *why, size_t why_len);
uint64_t ov_header_len(uint64_t npages);
uint64_t ov_data_off(uint32_t bs);
void ov_meta_free(struct ov_meta *m);
int ov_meta_copy(struct ov_meta *dst, const struct ov_meta *src);

static inline unsigned ov_dir_get(const uint8_t *dir, uint64_t p)
{
	return (dir[p / 4] >> (2 * (p % 4))) & 3u;
}

static inline void ov_dir_set(uint8_t *dir, uint64_t p, unsigned v)
{
	dir[p / 4] = (uint8_t)((dir[p / 4] & ~(3u << (2 * (p % 4)))) | (v << (2 * (p % 4))));
}

static inline uint64_t ov_pages_for(uint64_t nblocks)
{
	return (nblocks + OV_BLOCKS_PER_PAGE - 1) / OV_BLOCKS_PER_PAGE;
}

static inline uint64_t ov_words_for(uint64_t nblocks)
{
	return ov_pages_for(nblocks) * OV_PAGE_WORDS;
}

static inline uint64_t ov_round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

/* load.c: read and validate the committed state of a differencing file.  *words
 * gets the map (ov_words_for(nblocks) words, malloc).  report() (may be NULL)
 * hears every finding; check mode also inspects the inactive header slot. */
struct ov_loaded {
	struct ov_meta meta;
	uint64_t *words;
	bool other_slot_bad;	/* the older header slot failed validation */
};
int ov_load(int fd, bool direct, struct ov_loaded *l, overlay_report_fn report,
	    void *arg, int *problems);

/* map.c */
static inline unsigned ov_map_get_in(_Atomic uint64_t *map, uint64_t b)
{
	uint64_t w = atomic_load_explicit(&map[b / 32], memory_order_acquire);
	return (unsigned)(w >> (2 * (b % 32))) & 3u;
}

static inline unsigned ov_map_get(struct overlay *ov, uint64_t b)
{
	return ov_map_get_in(ov->map, b);
}

/* Length in words of a map array (stored just before it). */
static inline uint64_t ov_map_words(_Atomic uint64_t *map)
{
	return atomic_load_explicit(&map[-1], memory_order_relaxed);
}
void ov_map_set(struct overlay *ov, uint64_t b, unsigned state);
void ov_map_set_data_run(struct overlay *ov, uint64_t b, uint64_t n);
void ov_count_states(const _Atomic uint64_t *map, uint64_t nblocks,
		     uint64_t *ndata, uint64_t *nzero);
int ov_map_alloc(struct overlay *ov, uint64_t nblocks);

static inline pthread_mutex_t *ov_stripe(struct overlay *ov, uint64_t b)
{
	return &ov->stripe[b % OV_STRIPES];
}

static inline uint64_t ov_block_off(struct overlay *ov, uint64_t b)
{
	return ov->data_off + (b << ov->shift);
}

/* Record that block b changed: map page dirty for the next flush, merge bit for
 * the next merge pass.  Called after the change has landed in the diff. */
static inline void ov_mark_changed(struct overlay *ov, uint64_t b)
{
	struct overlay_merge *m = ov->merge;

	if (m)
		atomic_fetch_or(&m->dirty[b / 64], 1ull << (b % 64));
}

static inline void ov_mark_changed_run(struct overlay *ov, uint64_t b, uint64_t n)
{
	struct overlay_merge *m = ov->merge;

	for (uint64_t e = b + n; m && b < e;) {
		uint64_t first = b % 64, cnt = e - b < 64 - first ? e - b : 64 - first;
		uint64_t mask = (cnt == 64 ? ~0ull : ((1ull << cnt) - 1)) << first;

		atomic_fetch_or(&m->dirty[b / 64], mask);
		b += cnt;
	}
}

/* ident.c */
int ov_base_fingerprint(int base_fd, bool direct, uint64_t size, uint32_t *fp);

/* commit.c: write the current map and a new header.  Caller holds flush_lock and
 * io_lock (shared or exclusive). */
int ov_commit(struct overlay *ov, bool relocate);

/* rw.c, used by merge.c: read through the overlay, io_lock already held. */
int ov_read_locked(struct overlay *ov, void *buf, size_t len, uint64_t off);
int ov_write_locked(struct overlay *ov, const void *buf, size_t len, uint64_t off);

/* handle.c */
int ov_handle_new(int base_fd, int diff_fd, unsigned shift, struct overlay **out);
int ov_geometry(struct overlay *ov, uint64_t size);

/* rw.c: whole-block helpers; caller holds io_lock and the block's stripe lock. */
int ov_block_get(struct overlay *ov, uint64_t b, uint8_t *buf);
int ov_block_put(struct overlay *ov, uint64_t b, const uint8_t *buf);
int ov_seal_tail(struct overlay *ov, uint64_t size);
int ov_grow(struct overlay *ov, uint64_t new_size);
int ov_write_header(struct overlay *ov, const struct ov_meta *m);
void ov_set_why(char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
