/* load.c - find the committed state of a differencing file and validate it.
 *
 * The committed state is the valid header slot with the highest generation, plus
 * what it references: for version 2 the chain of record blocks from its head back
 * to the block without a predecessor, and the data slots the newest record of each
 * leaf names (load_v1.c does version 1).  A slot is valid only if its checksum and
 * every field check out and its generation's parity matches its position (commit g
 * always goes to slot g & 1), so a torn commit can only damage the slot that did
 * not hold the newest state.  Everything the chosen header references must then be
 * valid too: a damaged record block, a slot referenced twice or a file shorter
 * than its log is corruption and the file is refused, never read with a guessed
 * map.
 *
 * Replay walks the chain newest first; the first record seen for a leaf is its
 * current state and older ones are only validated.  The free space of the log is
 * what no committed reference covers (ov_rebuild_free).
 *
 * The same code serves overlay_open (stop at the first fatal finding) and
 * overlay_check (report every finding); report() hears both.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "internal.h"

void ov_note(struct ov_finder *f, bool problem, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (problem && f->problems)
		(*f->problems)++;
	if (!f->report)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	f->report(f->arg, msg);
}

static int read_slot(int fd, bool direct, unsigned s, uint8_t *buf, struct ov_meta *m,
		     struct ov_finder *f)
{
	char why[160];
	int ret = ov_pread(fd, direct, buf, OV_HDR_SLOT, (uint64_t)s * OV_HDR_SLOT);

	if (ret)
		return ret;
	ret = ov_header_any_decode(buf, OV_HDR_SLOT, m, why, sizeof(why));
	if (!ret && (m->gen & 1) != s) {
		snprintf(why, sizeof(why), "generation %llu does not belong in slot %u",
			 (unsigned long long)m->gen, s);
		ov_meta_free(m);
		ret = -EBADMSG;
	}
	if (ret)
		ov_note(f, true, "header slot %u: %s", s, why);
	return ret;
}

/* Pick the newest valid header; the other one is only reported on. */
int ov_load_header(int fd, bool direct, struct ov_meta *out, bool *other_bad,
		   struct ov_finder *f)
{
	struct ov_meta m[2];
	int r[2];
	uint8_t *buf = ov_alloc(OV_HDR_SLOT);
	struct stat st;

	if (!buf)
		return -ENOMEM;
	if (fstat(fd, &st)) {
		free(buf);
		return -errno;
	}
	if ((uint64_t)st.st_size < OV_HDR_SLOT + OV_HDR_LEN) {
		free(buf);
		ov_note(f, true, "file is %lld bytes, shorter than the two header slots",
			(long long)st.st_size);
		return -EBADMSG;
	}
	for (unsigned s = 0; s < 2; s++)
		r[s] = read_slot(fd, direct, s, buf, &m[s], f);
	free(buf);
	for (unsigned s = 0; s < 2; s++)
		if (r[s] && r[s] != -EBADMSG && r[s] != -ENOTSUP) {
			if (!r[!s])
				ov_meta_free(&m[!s]);
			return r[s];
		}
	if (r[0] && r[1])
		return r[0] == -ENOTSUP || r[1] == -ENOTSUP ? -ENOTSUP : -EBADMSG;

	unsigned pick = r[0] ? 1 : r[1] ? 0 : m[1].gen > m[0].gen;

	*out = m[pick];
	*other_bad = r[!pick] != 0;
	if (!r[!pick])
		ov_meta_free(&m[!pick]);
	ov_note(f, false, "using header slot %u, generation %llu, format version %u", pick,
		(unsigned long long)out->gen, out->version);
	return 0;
}

/* Adopt a record if it is the newest for its leaf (no leaf loaded yet). */
static int replay(struct overlay *ov, const uint8_t *r)
{
	uint64_t key = ov_get64(r);
	struct ov_leaf *l;
	int ret;

	if (ov_leaf_find(ov, key))
		return 0;	/* a newer record won */
	ret = ov_leaf_get(ov, key, &l);
	if (ret)
		return ret;
	for (unsigned i = 0; i < OV_LEAF_BLOCKS; i++)
		atomic_store(&l->e[i], ov_get32(r + 8 + 4 * i));
	return 0;
}

static int check_block(struct overlay *ov, const uint8_t *blk, uint64_t slot, uint64_t seq,
		       uint64_t max_gen, struct ov_rechdr *h, struct ov_finder *f)
{
	char why[160];
	int ret = ov_rec_decode(blk, ov->bs, ov->bs, &ov->meta, h, why, sizeof(why));

	if (!ret && (h->slot != slot || h->seq != seq))
		ret = -EBADMSG, snprintf(why, sizeof(why), "is block %llu of slot %llu",
					 (unsigned long long)h->seq, (unsigned long long)h->slot);
	if (!ret && h->gen > max_gen)
		ret = -EBADMSG, snprintf(why, sizeof(why), "generation %llu newer than its successor's",
					 (unsigned long long)h->gen);
	if (!ret && (seq == 0) != (h->prev == OV_NO_SLOT))
		ret = -EBADMSG, snprintf(why, sizeof(why), "chain does not end where the header says");
	for (uint32_t i = 0; !ret && i < h->nrec; i++) {
		const uint8_t *r = blk + OV_REC_HDR + (size_t)i * OV_REC_SIZE;
		uint32_t e[OV_LEAF_BLOCKS];

		for (unsigned k = 0; k < OV_LEAF_BLOCKS; k++)
			e[k] = ov_get32(r + 8 + 4 * k);
		ret = ov_rec_entry_check(ov_get64(r), e, &ov->meta, why, sizeof(why));
	}
	if (ret)
		ov_note(f, true, "record block %llu (slot %llu): %s", (unsigned long long)seq,
			(unsigned long long)slot, why);
	return ret;
}

static int walk_chain(struct overlay *ov, struct ov_finder *f)
{
	uint8_t *blk = ov_alloc(ov->bs);
	uint64_t slot = ov->meta.chain_head, gen = ov->meta.gen;
	int ret = blk ? 0 : -ENOMEM;

	for (uint64_t n = ov->meta.chain_len; n && !ret; n--) {
		struct ov_rechdr h = { 0 };

		ret = ov_pread(ov->diff_fd, ov->diff_direct, blk, ov->bs, ov_slot_off(ov, slot));
		ret = ret ?: check_block(ov, blk, slot, n - 1, gen, &h, f);
		ret = ret ?: ov_vec_push(&ov->chain, slot);
		for (uint32_t i = 0; !ret && i < h.nrec; i++)
			ret = replay(ov, blk + OV_REC_HDR + (size_t)i * OV_REC_SIZE);
		if (!ret) {
			ov->chain_recs += h.nrec;
			gen = h.gen;
			slot = h.prev;
		}
	}
	free(blk);
	/* Oldest first, as commits append. */
	for (uint64_t i = 0; !ret && i < ov->chain.n / 2; i++) {
		uint64_t t = ov->chain.v[i];

		ov->chain.v[i] = ov->chain.v[ov->chain.n - 1 - i];
		ov->chain.v[ov->chain.n - 1 - i] = t;
	}
	return ret;
}

/* Counters and each leaf's committed counts from the loaded entries. */
int ov_check_counts(struct overlay *ov, struct ov_finder *f)
{
	uint64_t nd = 0, nz = 0;

	for (struct ov_leaf *l = ov_leaf_next(ov->head); l; l = ov_leaf_next(l)) {
		uint32_t e[OV_LEAF_BLOCKS];
		unsigned d, z;

		for (unsigned i = 0; i < OV_LEAF_BLOCKS; i++)
			e[i] = atomic_load(&l->e[i]);
		ov_leaf_count(e, &d, &z);
		l->cnd = (uint8_t)d;
		l->cnz = (uint8_t)z;
		nd += d;
		nz += z;
	}
	atomic_store(&ov->ndata, nd);
	atomic_store(&ov->nzero, nz);
	if (nd != ov->meta.ndata || nz != ov->meta.nzero) {
		ov_note(f, true, "map holds %llu data / %llu zero blocks, header says %llu / %llu",
			(unsigned long long)nd, (unsigned long long)nz,
			(unsigned long long)ov->meta.ndata, (unsigned long long)ov->meta.nzero);
		return -EBADMSG;
	}
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Every referenced slot (data entries, chain blocks, and `reserved`, which the
 * committed state owns in another way: version 1's map area) must lie below the
 * log end and be referenced once; the rest of [0, log_end) is free.  reserved
 * slots go to the pending list: free after the next commit. */
int ov_rebuild_free(struct overlay *ov, uint64_t *reserved, uint64_t nreserved,
		    struct ov_finder *f)
{
	uint64_t n = ov->chain.n + nreserved, k = n, end = atomic_load(&ov->log_end), gaps = 0;
	uint32_t *s;	/* slots < OV_LOG_MAX < 2^32: half the memory of 64-bit ones */
	int ret = 0;

	s = malloc((n + atomic_load(&ov->ndata) + 1) * sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (uint64_t i = 0; i < ov->chain.n; i++)
		s[i] = (uint32_t)ov->chain.v[i];
	for (uint64_t i = 0; i < nreserved; i++)
		s[ov->chain.n + i] = (uint32_t)reserved[i];
	for (struct ov_leaf *l = ov_leaf_next(ov->head); l; l = ov_leaf_next(l))
		for (unsigned i = 0; i < OV_LEAF_BLOCKS; i++)
			if (atomic_load(&l->e[i]) >= OV_E_SLOT0)
				s[k++] = (uint32_t)ov_e_slot(atomic_load(&l->e[i]));
	qsort(s, k, sizeof(*s), cmp_u32);
	for (uint64_t i = 0; i < k; i++) {
		if (s[i] >= end || (i && s[i] == s[i - 1])) {
			ov_note(f, true, "log slot %llu %s", (unsigned long long)s[i],
				s[i] >= end ? "past the log end" : "referenced twice");
			ret = -EBADMSG;
			break;
		}
		gaps += s[i] > (i ? s[i - 1] + 1ull : 0);
	}
	gaps += k ? end > s[k - 1] + 1ull : end > 0;
	/* The gaps are free; counted first so the extents take no more than they
	 * need (mem_bytes counts them), then built in one pass. */
	if (!ret && !(ov->free = malloc((gaps ? gaps : 1) * sizeof(*ov->free))))
		ret = -ENOMEM;
	ov->free_cap = ret ? 0 : (gaps ? gaps : 1);
	for (uint64_t i = 0, at = 0; !ret && i <= k; i++) {
		uint64_t next = i < k ? s[i] : end;

		if (next > at) {
			assert(ov->nfree < gaps);
			ov->free[ov->nfree++] = (struct ov_ext){ at, next - at };
			ov->free_blocks += next - at;
		}
		at = next + 1;
	}
	/* Not punched when freed: they are reused in place like any free slot. */
	for (uint64_t i = 0; !ret && i < nreserved; i++)
		ret = ov_vec_push(&ov->pending, reserved[i]);
	free(s);
	return ret;
}

int ov_load_v2(struct overlay *ov, struct ov_finder *f)
{
	struct stat st;
	uint64_t need = ov->data_off + (ov->meta.log_end << ov->shift);
	int ret, bad = 0;

	atomic_store(&ov->log_end, ov->meta.log_end);
	if (fstat(ov->diff_fd, &st))
		return -errno;
	if ((uint64_t)st.st_size < need) {	/* commits extend the file first */
		ov_note(f, true, "file truncated: %lld bytes, its log ends at %llu",
			(long long)st.st_size, (unsigned long long)need);
		if (!f->problems)
			return -EBADMSG;
		bad = -EBADMSG;
	}
	ret = walk_chain(ov, f);
	if (ret && (ret != -EBADMSG || !f->problems))
		return ret;
	return ov_check_counts(ov, f) ?: ov_rebuild_free(ov, NULL, 0, f) ?: ret ?: bad;
}
