/* internal.h - what the overlay's source files share; not installed.
 *
 * Layout of a version-2 differencing file (details in FORMAT.md):
 *   [0, 4K)         header slot 0      } two copies; commit gen g goes to slot g & 1
 *   [64K, 68K)      header slot 1      }
 *   [1M, ...)       the log: slot s (one block) at data_off + s * block_size, holding
 *                   either a data block or a record block of the map
 *
 * The map says, per guest block, BASE, ZERO or "DATA in slot s".  In memory it is a
 * set of leaves of 16 entries each, only for blocks that are or were not BASE, so
 * memory follows what was written, not the virtual size (leaf.c).  On disk every
 * commit appends the leaves it changed as records to a chain of record blocks; a
 * checkpoint now and then rewrites all leaves as a fresh chain (commit.c).
 *
 * Numbered invariants (asserted where they are relied on):
 *  I1 A slot referenced by the committed state (a data entry or a chain block) is
 *     never written, except by a guest write to the very block it holds (in place,
 *     as a disk would).
 *  I2 A slot is on the free list only if neither the committed nor the in-memory
 *     state references it; it becomes free only after the commit that dropped its
 *     last reference is durable (alloc.c, commit.c).
 *  I3 Every slot referenced anywhere is below log_end; log_end never decreases.
 *  I4 A block's entry becomes DATA only after its bytes were written to its slot; a
 *     leaf is marked dirty after the entry changed (so a commit that misses the
 *     change leaves the leaf dirty for the next one).
 *  I5 Bytes of a DATA block past the logical size are zero.
 */
#ifndef VDS_OVERLAY_INTERNAL_H
#define VDS_OVERLAY_INTERNAL_H

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "overlay.h"

#define OV_MAGIC "VDSDIFF\0"
#define OV_VERSION 2u
#define OV_HDR_SLOT (64u << 10)		/* distance between the two header slots */
#define OV_HDR_LEN 4096u		/* bytes of a v2 header */
#define OV_HDR_AREA (2u * OV_HDR_SLOT)
#define OV_DATA_ALIGN (1u << 20)	/* data_off: FORMAT.md */
#define OV_PAGE_SIZE 4096u
#define OV_ALIGN 4096u			/* O_DIRECT-safe alignment */
#define OV_STRIPES 256u
#define OV_MAX_SIZE (1ull << 60)

/* Header flags. */
#define OV_FLAG_BASE_DIRTY (1u << 0)	/* a merge onto the base has started */
#define OV_FLAGS_KNOWN OV_FLAG_BASE_DIRTY

/* Map entries (32 bits): BASE, ZERO, or DATA in slot (e - OV_E_SLOT0). */
#define OV_E_BASE 0u
#define OV_E_ZERO 1u
#define OV_E_SLOT0 2u
#define OV_LOG_MAX ((uint64_t)UINT32_MAX - OV_E_SLOT0 + 1)	/* slots a log can hold */
#define OV_NO_SLOT UINT64_MAX

static inline unsigned ov_e_state(uint32_t e)
{
	return e == OV_E_BASE ? OVERLAY_BASE : e == OV_E_ZERO ? OVERLAY_ZERO : OVERLAY_DATA;
}

static inline uint64_t ov_e_slot(uint32_t e)
{
	return (uint64_t)e - OV_E_SLOT0;
}

static inline uint32_t ov_e_data(uint64_t slot)
{
	return (uint32_t)(slot + OV_E_SLOT0);
}

/* Leaves: 16 consecutive blocks; key = block >> OV_LEAF_SHIFT. */
#define OV_LEAF_SHIFT 4u
#define OV_LEAF_BLOCKS (1u << OV_LEAF_SHIFT)
#define OV_SKIP_LEVELS 16

/* Record blocks (FORMAT.md §3). */
#define OV_REC_MAGIC 0x52534456u	/* "VDSR" little endian */
#define OV_REC_HDR 64u
#define OV_REC_SIZE (8u + 4u * OV_LEAF_BLOCKS)	/* key + 16 entries = 72 */

/* A leaf of the in-memory map.  Never freed while the overlay is open (readers take
 * no lock), so a pointer to one stays valid; entries are read and written atomically.
 * next[] links the skiplist that keeps leaves in key order (inserts serialised by
 * leaf_lock, walks lock-free); the hash table finds a leaf by key in O(1). */
struct ov_leaf {
	uint64_t key;
	struct ov_leaf *dirty_next;	/* commit's stack; owned by whoever set dirty */
	_Atomic uint32_t e[OV_LEAF_BLOCKS];
	_Atomic uint16_t merge_dirty;	/* 1 bit per entry: changed since the merge pass */
	_Atomic uint8_t dirty;		/* changed since its last commit */
	uint8_t cnd, cnz;		/* data / zero entries as last committed */
	uint8_t snd, snz;		/* the same in the commit being written */
	uint8_t level;			/* skiplist height */
	struct ov_leaf *_Atomic next[];	/* level pointers */
};

/* Open-addressing table of leaf pointers: insert-only, so readers probe without a
 * lock; grown by building a new table (leaf_lock held) and publishing it. */
struct ov_table {
	uint64_t mask;
	struct ov_leaf *_Atomic b[];
};

struct ov_retired {
	void *p;
	struct ov_retired *next;
};

/* A free run of log slots. */
struct ov_ext {
	uint64_t start, len;
};

/* Pending frees: slots whose last reference is gone in memory but maybe not yet in
 * the committed state (I2).  Bit 63 asks for a hole punch when freed. */
#define OV_PEND_PUNCH (1ull << 63)
struct ov_vec {
	uint64_t *v;
	uint64_t n, cap;
};

/* A decoded header (either version). */
struct ov_meta {
	uint32_t version, hdr_len, flags, block_shift;
	uint64_t gen, size, nblocks, data_off;
	uint64_t log_end, chain_head, chain_len;	/* v2 */
	uint64_t map_off, npages;			/* v1 */
	uint64_t base_size, ndata, nzero;
	uint32_t base_fp;
	char uuid[OVERLAY_UUID_MAX + 1];
	uint8_t *dir;					/* v1 directory (malloc) */
};

struct overlay_merge {
	struct overlay *ov;
	int target_fd;
	bool target_is_base, target_direct;
};

struct overlay {
	int base_fd, diff_fd;
	bool base_direct, diff_direct, rdonly;
	uint32_t bs;
	unsigned shift;

	/* io_lock: shared by every I/O path except overlay_read (write, discard,
	 * flush, merge pass, iteration); exclusive for resize and merge begin/end.  It
	 * guards size/nblocks and the merge pointer: these only change while no writer
	 * runs. */
	pthread_rwlock_t io_lock;
	_Atomic uint64_t size;
	uint64_t nblocks;
	struct overlay_merge *merge;

	/* overlay_read takes no lock.  A slot it looked up may be freed and reused by
	 * another block before its pread lands; every such reuse (and every resize)
	 * first bumps reuse_seq, so the reader compares it before and after and
	 * retries (rw.c). */
	_Atomic uint64_t reuse_seq;

	uint64_t base_size, data_off;	/* constant after create/open */

	/* The map (leaf.c).  leaf_lock serialises leaf insertion and guards the
	 * skiplist's links, the table swap, nleaves, the slabs and the retired list.
	 * Lookups and walks take no lock. */
	pthread_mutex_t leaf_lock;
	struct ov_table *_Atomic table;
	struct ov_leaf *head;		/* skiplist head (key unused) */
	_Atomic uint64_t nleaves;	/* read without leaf_lock by commits */
	uint64_t rng;
	uint8_t *slab;			/* current slab, slab_used bytes handed out */
	size_t slab_used;
	struct ov_retired *retired;	/* old tables and slabs, freed at close */
	_Atomic uint64_t mem_map;	/* bytes held by slabs and tables */
	struct ov_leaf *_Atomic dirty_head;	/* leaves changed since the last commit */

	/* Counters follow every state change (atomic, any thread). */
	_Atomic uint64_t ndata, nzero;

	/* alloc_lock guards the log: log_end, free extents, pending frees (alloc.c).
	 * Order: flush_lock, then stripe locks, then alloc_lock. */
	pthread_mutex_t alloc_lock;
	_Atomic uint64_t log_end;
	struct ov_ext *free;
	uint64_t nfree, free_cap, free_blocks;
	struct ov_vec pending;

	/* ov_stripe(ov, b) serialises every change of block b's entry and every
	 * write into its slot: a writer holding it knows the slot cannot be freed and
	 * reused under it (a discard needs the same lock). One stripe covers a group
	 * of OV_STRIPE_BLOCKS consecutive blocks, so the longest write run (1 MiB)
	 * takes at most two: a thread never holds dozens of mutexes at once, which
	 * ThreadSanitizer's deadlock detector (at most 64 per thread) could not
	 * follow. Random writes still spread over 256 stripes. */
	pthread_mutex_t stripe[OV_STRIPES];
	uint8_t *zero_block;		/* bs zero bytes, aligned, read-only */

	/* flush_lock: one commit at a time; guards meta (the committed header), the
	 * chain's slot list and the checkpoint decision.  Order: io_lock before
	 * flush_lock. */
	pthread_mutex_t flush_lock;
	struct ov_meta meta;
	unsigned want_flags;		/* header flags for the next commit */
	bool need_checkpoint;		/* next commit rewrites the whole map */
	bool repair_header;		/* older header slot is damaged: rewrite it */
	struct ov_vec chain;		/* slots of the committed chain, oldest first */
	uint64_t chain_recs;		/* records in it */
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

/* Header fields both versions share (FORMAT.md §2 and appendix A). */
enum {
	OVH_MAGIC = 0, OVH_VERSION = 8, OVH_LEN = 12, OVH_CRC = 16, OVH_FLAGS = 20,
	OVH_GEN = 24, OVH_SHIFT = 32, OVH_RSV0 = 36, OVH_SIZE = 40, OVH_NBLOCKS = 48,
	OVH_DATA_OFF = 56, OVH_BASE_SIZE = 80, OVH_BASE_FP = 88, OVH_RSV1 = 92,
	OVH_UUID = 96, OVH_NDATA = 160, OVH_NZERO = 168,
};

/* format.c: pure encoders/decoders of version 2 (no I/O); the fuzz target drives
 * these.  A record block's buffer is `len` bytes (a multiple of 4096). */
void ov_put32(uint8_t *p, uint32_t v);
void ov_put64(uint8_t *p, uint64_t v);
uint32_t ov_get32(const uint8_t *p);
uint64_t ov_get64(const uint8_t *p);
void ov_header_encode(const struct ov_meta *m, uint8_t *slot);
int ov_header_decode(const uint8_t *slot, size_t len, struct ov_meta *m,
		     char *why, size_t why_len);
struct ov_rechdr {
	uint32_t len, nrec;
	uint64_t gen, seq, prev, slot;
};
uint32_t ov_rec_per_block(uint32_t bs);
void ov_rec_encode(uint8_t *blk, const struct ov_rechdr *h, const uint8_t *records);
int ov_rec_decode(const uint8_t *blk, size_t have, uint32_t bs, const struct ov_meta *m,
		  struct ov_rechdr *h, char *why, size_t why_len);
int ov_rec_entry_check(uint64_t key, const uint32_t *e, const struct ov_meta *m,
		       char *why, size_t why_len);
uint64_t ov_data_off(uint32_t bs);
void ov_meta_free(struct ov_meta *m);
/* The shared fields: put them into a zeroed header of len bytes, then the caller
 * adds its own and seals (checksum); get checks magic, length, checksum, version
 * and every shared rule, with bytes [rsv, rsv_end) reserved. */
void ov_hdr_put_common(const struct ov_meta *m, uint8_t *s, uint32_t version, uint32_t len);
void ov_hdr_seal(uint8_t *s, uint32_t len);
int ov_hdr_get_common(const uint8_t *s, size_t len, uint32_t version, struct ov_meta *m,
		      size_t rsv, size_t rsv_end, char *why, size_t wl);

/* format_v1.c: version 1 (fixed offsets, 2-bit map pages); read, and written only
 * by the tests that make version-1 files. */
#define OV1_VERSION 1u
#define OV1_HDR_FIXED 256u
#define OV1_PAGE_HDR 32u
#define OV1_PAGE_WORDS ((OV_PAGE_SIZE - OV1_PAGE_HDR) / 8)	/* 508 */
#define OV1_BLOCKS_PER_PAGE (OV1_PAGE_WORDS * 32u)	/* 16256 */
#define OV1_MAX_PAGES ((uint64_t)(OV_HDR_SLOT - OV1_HDR_FIXED) * 4)
#define OV1_PAGE_MAGIC 0x4d534456u	/* "VDSM" little endian */
enum { OV1_DIR_NONE = 0, OV1_DIR_SLOT0 = 1, OV1_DIR_SLOT1 = 2 };
void ov1_header_encode(const struct ov_meta *m, uint8_t *slot);
int ov1_header_decode(const uint8_t *slot, size_t len, struct ov_meta *m,
		      char *why, size_t why_len);
void ov1_page_encode(uint8_t *page, uint64_t index, uint64_t gen, const uint64_t *words,
		     uint64_t *nd, uint64_t *nz);
int ov1_page_decode(const uint8_t *page, uint64_t index, uint64_t max_gen,
		    uint64_t nblocks_in_page, uint64_t *words, char *why, size_t why_len);
uint64_t ov1_header_len(uint64_t npages);
int ov_header_any_decode(const uint8_t *slot, size_t len, struct ov_meta *m,
			 char *why, size_t why_len);

static inline unsigned ov1_dir_get(const uint8_t *dir, uint64_t p)
{
	return (dir[p / 4] >> (2 * (p % 4))) & 3u;
}

static inline void ov1_dir_set(uint8_t *dir, uint64_t p, unsigned v)
{
	dir[p / 4] = (uint8_t)((dir[p / 4] & ~(3u << (2 * (p % 4)))) | (v << (2 * (p % 4))));
}

static inline uint64_t ov1_pages_for(uint64_t nblocks)
{
	return (nblocks + OV1_BLOCKS_PER_PAGE - 1) / OV1_BLOCKS_PER_PAGE;
}

static inline uint64_t ov_round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

/* leaf.c: the sparse map. */
int ov_map_init(struct overlay *ov);
void ov_map_free(struct overlay *ov);
struct ov_leaf *ov_leaf_find(struct overlay *ov, uint64_t key);
int ov_leaf_get(struct overlay *ov, uint64_t key, struct ov_leaf **out);	/* create */
struct ov_leaf *ov_leaf_ge(struct overlay *ov, uint64_t key);	/* first key >= key */
static inline struct ov_leaf *ov_leaf_next(struct ov_leaf *l)
{
	return atomic_load_explicit(&l->next[0], memory_order_acquire);
}
uint32_t ov_entry(struct overlay *ov, uint64_t b);
void ov_entry_set(struct overlay *ov, struct ov_leaf *l, uint64_t b, uint32_t e);
void ov_leaf_mark_dirty(struct overlay *ov, struct ov_leaf *l);
void ov_leaf_count(const uint32_t *e, unsigned *nd, unsigned *nz);

static inline unsigned ov_state(struct overlay *ov, uint64_t b)
{
	return ov_e_state(ov_entry(ov, b));
}

/* alloc.c: log slots.  alloc hands out up to `want` consecutive slots (at least one)
 * and returns how many, or -ENOSPC when the log is at OV_LOG_MAX. */
int64_t ov_slots_alloc(struct overlay *ov, uint64_t want, uint64_t *first);
void ov_slots_unalloc(struct overlay *ov, uint64_t first, uint64_t n);	/* never used */
int ov_slot_release(struct overlay *ov, uint64_t slot, bool punch_later);
int ov_free_take_sorted(struct overlay *ov, uint64_t *slots, uint64_t n);
int ov_vec_push(struct ov_vec *v, uint64_t x);
void ov_vec_free(struct ov_vec *v);

static inline uint64_t ov_slot_off(struct overlay *ov, uint64_t slot)
{
	return ov->data_off + (slot << ov->shift);
}

#define OV_STRIPE_SHIFT 8u
#define OV_STRIPE_BLOCKS (1u << OV_STRIPE_SHIFT)

static inline uint64_t ov_stripe_index(uint64_t b)
{
	return (b >> OV_STRIPE_SHIFT) % OV_STRIPES;
}

static inline pthread_mutex_t *ov_stripe(struct overlay *ov, uint64_t b)
{
	return &ov->stripe[ov_stripe_index(b)];
}

/* Record that block b changed, for a running merge (the leaf exists: the block is
 * not BASE, or was not until the change). */
static inline void ov_mark_changed(struct overlay *ov, struct ov_leaf *l, uint64_t b)
{
	if (ov->merge)
		atomic_fetch_or(&l->merge_dirty, (uint16_t)(1u << (b % OV_LEAF_BLOCKS)));
}

/* ident.c */
int ov_base_fingerprint(int base_fd, bool direct, uint64_t size, uint32_t *fp);

/* commit.c: write the changed leaves and a new header.  Caller holds flush_lock
 * and io_lock (shared or exclusive). */
int ov_commit(struct overlay *ov, bool checkpoint);
int ov_write_header(struct overlay *ov, const struct ov_meta *m);

/* load.c / load_v1.c: read and validate the committed state into a handle whose
 * geometry is set (open.c).  report() (may be NULL) hears every finding. */
struct ov_finder {
	overlay_report_fn report;
	void *arg;
	int *problems;		/* non-NULL: check mode, go on after a problem */
};
void ov_note(struct ov_finder *f, bool problem, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int ov_load_header(int fd, bool direct, struct ov_meta *m, bool *other_bad,
		   struct ov_finder *f);
int ov_load_v2(struct overlay *ov, struct ov_finder *f);
int ov_load_handle(int base_fd, int diff_fd, struct ov_meta *m, struct ov_finder *f,
		   struct overlay **out);
int ov_load_v1(struct overlay *ov, struct ov_finder *f);
int ov_check_counts(struct overlay *ov, struct ov_finder *f);
int ov_rebuild_free(struct overlay *ov, uint64_t *reserved, uint64_t nreserved,
		    struct ov_finder *f);

/* rw.c, used by merge.c: read through the overlay, io_lock already held. */
int ov_read_locked(struct overlay *ov, void *buf, size_t len, uint64_t off);

/* handle.c */
int ov_handle_new(int base_fd, int diff_fd, unsigned shift, struct overlay **out);
void ov_set_geometry(struct overlay *ov, uint64_t size);

/* rw.c: whole-block helpers; caller holds io_lock and the block's stripe lock. */
int ov_block_get(struct overlay *ov, uint64_t b, uint8_t *buf);
int ov_block_put(struct overlay *ov, uint64_t b, const uint8_t *buf);
int ov_seal_tail(struct overlay *ov, uint64_t size);
int ov_grow(struct overlay *ov, uint64_t new_size);
void ov_set_why(char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
