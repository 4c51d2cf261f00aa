/* format.c - encoding and validation of version-2 headers and record blocks
 * (FORMAT.md).
 *
 * Pure functions over byte buffers, no I/O, so the fuzz target can drive them
 * directly.  Everything on disk is little endian.  A decoder accepts a structure
 * only if its checksum matches AND every field is in range and consistent with the
 * others; a structure that fails any test is reported with a one-line reason and is
 * never used.  Reserved bytes must be zero so a future version can give them a
 * meaning without old readers misreading them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

void ov_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void ov_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

uint32_t ov_get32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

uint64_t ov_get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

void ov_set_why(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!why || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

/* The log starts at 1 MiB (after both header slots), so a sequential run of slots
 * keeps 1 MiB alignment in the file as it had in the guest; version 1 measured
 * 0.81x -> 0.96x for diff reads from that (FORMAT.md). */
uint64_t ov_data_off(uint32_t bs)
{
	return ov_round_up(OV_DATA_ALIGN, bs);
}

void ov_meta_free(struct ov_meta *m)
{
	free(m->dir);
	m->dir = NULL;
}

/* Version 2's own header fields (FORMAT.md §2); the rest are shared with
 * version 1 (OVH_*), whose first 24 bytes are laid out the same, so a reader tells
 * the versions apart before it knows either. */
enum { H_LOG_END = 64, H_CHAIN_HEAD = 72, H_CHAIN_LEN = 176, H_RSV2 = 184 };

static uint32_t crc_without(const uint8_t *p, size_t len, size_t crc_at)
{
	static const uint8_t zero4[4];
	uint32_t crc = ov_crc32c(0, p, crc_at);

	crc = ov_crc32c(crc, zero4, 4);
	return ov_crc32c(crc, p + crc_at + 4, len - crc_at - 4);
}

void ov_hdr_put_common(const struct ov_meta *m, uint8_t *s, uint32_t version, uint32_t len)
{
	memset(s, 0, len);
	memcpy(s + OVH_MAGIC, OV_MAGIC, 8);
	ov_put32(s + OVH_VERSION, version);
	ov_put32(s + OVH_LEN, len);
	ov_put32(s + OVH_FLAGS, m->flags);
	ov_put64(s + OVH_GEN, m->gen);
	ov_put32(s + OVH_SHIFT, m->block_shift);
	ov_put64(s + OVH_SIZE, m->size);
	ov_put64(s + OVH_NBLOCKS, m->nblocks);
	ov_put64(s + OVH_DATA_OFF, m->data_off);
	ov_put64(s + OVH_BASE_SIZE, m->base_size);
	ov_put32(s + OVH_BASE_FP, m->base_fp);
	memcpy(s + OVH_UUID, m->uuid, strnlen(m->uuid, OVERLAY_UUID_MAX));
	ov_put64(s + OVH_NDATA, m->ndata);
	ov_put64(s + OVH_NZERO, m->nzero);
}

void ov_hdr_seal(uint8_t *s, uint32_t len)
{
	ov_put32(s + OVH_CRC, 0);
	ov_put32(s + OVH_CRC, ov_crc32c(0, s, len));
}

void ov_header_encode(const struct ov_meta *m, uint8_t *slot)
{
	ov_hdr_put_common(m, slot, OV_VERSION, OV_HDR_LEN);
	ov_put64(slot + H_LOG_END, m->log_end);
	ov_put64(slot + H_CHAIN_HEAD, m->chain_head);
	ov_put64(slot + H_CHAIN_LEN, m->chain_len);
	ov_hdr_seal(slot, OV_HDR_LEN);
}

static int check_geometry(const struct ov_meta *m, char *why, size_t wl)
{
	if (m->log_end > OV_LOG_MAX) {
		ov_set_why(why, wl, "log end %llu past the largest log",
			   (unsigned long long)m->log_end);
		return -EBADMSG;
	}
	if ((m->chain_head == OV_NO_SLOT) != (m->chain_len == 0) ||
	    (m->chain_len && (m->chain_head >= m->log_end || m->chain_len > m->log_end))) {
		ov_set_why(why, wl, "record chain (head %llu, %llu blocks) outside the log",
			   (unsigned long long)m->chain_head, (unsigned long long)m->chain_len);
		return -EBADMSG;
	}
	if (m->ndata + m->nzero > m->nblocks || m->ndata > m->nblocks ||
	    m->ndata > m->log_end) {
		ov_set_why(why, wl, "block counters exceed block count");
		return -EBADMSG;
	}
	return 0;
}

/* Magic, length and checksum: common to both versions. */
static int check_fixed(const uint8_t *s, size_t len, uint32_t *hdr_len, char *why, size_t wl)
{
	if (len < OV_HDR_LEN || memcmp(s + OVH_MAGIC, OV_MAGIC, 8)) {
		ov_set_why(why, wl, "bad magic (not a vds differencing file)");
		return -EBADMSG;
	}
	*hdr_len = ov_get32(s + OVH_LEN);
	if (*hdr_len < OV_PAGE_SIZE || *hdr_len > OV_HDR_SLOT || *hdr_len > len ||
	    *hdr_len % OV_PAGE_SIZE) {
		ov_set_why(why, wl, "header length %u out of range", *hdr_len);
		return -EBADMSG;
	}
	if (crc_without(s, *hdr_len, OVH_CRC) != ov_get32(s + OVH_CRC)) {
		ov_set_why(why, wl, "header checksum mismatch (torn write or corruption)");
		return -EBADMSG;
	}
	return 0;
}

int ov_hdr_get_common(const uint8_t *s, size_t len, uint32_t version, struct ov_meta *m,
		      size_t rsv, size_t rsv_end, char *why, size_t wl)
{
	int ret;

	memset(m, 0, sizeof(*m));
	ret = check_fixed(s, len, &m->hdr_len, why, wl);
	if (ret)
		return ret;
	m->version = ov_get32(s + OVH_VERSION);
	if (m->version != version) {
		ov_set_why(why, wl, "unsupported format version %u", m->version);
		return -ENOTSUP;
	}
	m->flags = ov_get32(s + OVH_FLAGS);
	m->gen = ov_get64(s + OVH_GEN);
	m->block_shift = ov_get32(s + OVH_SHIFT);
	m->size = ov_get64(s + OVH_SIZE);
	m->nblocks = ov_get64(s + OVH_NBLOCKS);
	m->data_off = ov_get64(s + OVH_DATA_OFF);
	m->base_size = ov_get64(s + OVH_BASE_SIZE);
	m->base_fp = ov_get32(s + OVH_BASE_FP);
	m->ndata = ov_get64(s + OVH_NDATA);
	m->nzero = ov_get64(s + OVH_NZERO);
	if (m->flags & ~OV_FLAGS_KNOWN) {
		ov_set_why(why, wl, "unknown header flags 0x%x", m->flags);
		return -ENOTSUP;
	}
	if (m->block_shift < 12 || m->block_shift > 20) {
		ov_set_why(why, wl, "block size 2^%u out of range", m->block_shift);
		return -EBADMSG;
	}
	if (m->size > OV_MAX_SIZE || m->base_size > OV_MAX_SIZE) {
		ov_set_why(why, wl, "size out of range");
		return -EBADMSG;
	}
	if (ov_get32(s + OVH_RSV0) || ov_get32(s + OVH_RSV1) || !all_zero(s + rsv, rsv_end - rsv)) {
		ov_set_why(why, wl, "reserved header bytes are not zero");
		return -EBADMSG;
	}
	if (s[OVH_UUID + OVERLAY_UUID_MAX]) {
		ov_set_why(why, wl, "base uuid not terminated");
		return -EBADMSG;
	}
	memcpy(m->uuid, s + OVH_UUID, OVERLAY_UUID_MAX + 1);
	if (m->nblocks != (m->size + (1ull << m->block_shift) - 1) >> m->block_shift) {
		ov_set_why(why, wl, "block count %llu does not match size %llu",
			   (unsigned long long)m->nblocks, (unsigned long long)m->size);
		return -EBADMSG;
	}
	if (m->data_off != ov_data_off(1u << m->block_shift)) {
		ov_set_why(why, wl, "data offset %llu wrong", (unsigned long long)m->data_off);
		return -EBADMSG;
	}
	return 0;
}

int ov_header_decode(const uint8_t *s, size_t len, struct ov_meta *m, char *why, size_t wl)
{
	int ret = ov_hdr_get_common(s, len, OV_VERSION, m, H_RSV2, OV_HDR_LEN, why, wl);

	if (ret)
		return ret;
	if (m->hdr_len != OV_HDR_LEN) {
		ov_set_why(why, wl, "header length %u, version 2 has %u", m->hdr_len, OV_HDR_LEN);
		return -EBADMSG;
	}
	m->log_end = ov_get64(s + H_LOG_END);
	m->chain_head = ov_get64(s + H_CHAIN_HEAD);
	m->chain_len = ov_get64(s + H_CHAIN_LEN);
	return check_geometry(m, why, wl);
}

/* Either version, told apart by the version field once the checksum holds. */
int ov_header_any_decode(const uint8_t *s, size_t len, struct ov_meta *m, char *why, size_t wl)
{
	uint32_t hdr_len;
	int ret;

	memset(m, 0, sizeof(*m));
	ret = check_fixed(s, len, &hdr_len, why, wl);
	if (ret)
		return ret;
	if (ov_get32(s + OVH_VERSION) == OV1_VERSION)
		return ov1_header_decode(s, len, m, why, wl);
	return ov_header_decode(s, len, m, why, wl);
}

/* Record block field offsets (FORMAT.md §3). */
enum { R_MAGIC = 0, R_CRC = 4, R_LEN = 8, R_NREC = 12, R_GEN = 16, R_SEQ = 24,
       R_PREV = 32, R_SLOT = 40, R_RSV = 48 };

uint32_t ov_rec_per_block(uint32_t bs)
{
	return (bs - OV_REC_HDR) / OV_REC_SIZE;
}

/* records: h->nrec records of OV_REC_SIZE bytes, already encoded. */
void ov_rec_encode(uint8_t *blk, const struct ov_rechdr *h, const uint8_t *records)
{
	memset(blk, 0, h->len);
	ov_put32(blk + R_MAGIC, OV_REC_MAGIC);
	ov_put32(blk + R_LEN, h->len);
	ov_put32(blk + R_NREC, h->nrec);
	ov_put64(blk + R_GEN, h->gen);
	ov_put64(blk + R_SEQ, h->seq);
	ov_put64(blk + R_PREV, h->prev);
	ov_put64(blk + R_SLOT, h->slot);
	memcpy(blk + OV_REC_HDR, records, (size_t)h->nrec * OV_REC_SIZE);
	ov_put32(blk + R_CRC, ov_crc32c(0, blk, h->len));
}

int ov_rec_entry_check(uint64_t key, const uint32_t *e, const struct ov_meta *m,
		       char *why, size_t wl)
{
	uint64_t nleaves = (m->nblocks + OV_LEAF_BLOCKS - 1) >> OV_LEAF_SHIFT;

	if (key >= nleaves) {
		ov_set_why(why, wl, "record for leaf %llu past the last block",
			   (unsigned long long)key);
		return -EBADMSG;
	}
	for (unsigned i = 0; i < OV_LEAF_BLOCKS; i++) {
		uint64_t b = (key << OV_LEAF_SHIFT) + i;

		if (b >= m->nblocks && e[i]) {
			ov_set_why(why, wl, "entry for block %llu past the last block",
				   (unsigned long long)b);
			return -EBADMSG;
		}
		if (e[i] >= OV_E_SLOT0 && ov_e_slot(e[i]) >= m->log_end) {
			ov_set_why(why, wl, "block %llu in slot %llu past the log end %llu",
				   (unsigned long long)b, (unsigned long long)ov_e_slot(e[i]),
				   (unsigned long long)m->log_end);
			return -EBADMSG;
		}
	}
	return 0;
}

/* Everything a record block says about itself; the chain rules (slot, seq, gen
 * order) and the entries are the loader's (load.c, ov_rec_entry_check). */
int ov_rec_decode(const uint8_t *blk, size_t have, uint32_t bs, const struct ov_meta *m,
		  struct ov_rechdr *h, char *why, size_t wl)
{
	if (have < OV_PAGE_SIZE || ov_get32(blk + R_MAGIC) != OV_REC_MAGIC) {
		ov_set_why(why, wl, "bad record block magic");
		return -EBADMSG;
	}
	h->len = ov_get32(blk + R_LEN);
	if (h->len < OV_PAGE_SIZE || h->len % OV_PAGE_SIZE || h->len > bs || h->len > have) {
		ov_set_why(why, wl, "record block length %u out of range", h->len);
		return -EBADMSG;
	}
	if (crc_without(blk, h->len, R_CRC) != ov_get32(blk + R_CRC)) {
		ov_set_why(why, wl, "record block checksum mismatch");
		return -EBADMSG;
	}
	h->nrec = ov_get32(blk + R_NREC);
	h->gen = ov_get64(blk + R_GEN);
	h->seq = ov_get64(blk + R_SEQ);
	h->prev = ov_get64(blk + R_PREV);
	h->slot = ov_get64(blk + R_SLOT);
	if (h->nrec == 0 || h->nrec > ov_rec_per_block(bs) ||
	    OV_REC_HDR + (uint64_t)h->nrec * OV_REC_SIZE > h->len ||
	    ov_round_up(OV_REC_HDR + (uint64_t)h->nrec * OV_REC_SIZE, OV_PAGE_SIZE) != h->len) {
		ov_set_why(why, wl, "record count %u does not fit length %u", h->nrec, h->len);
		return -EBADMSG;
	}
	if (h->gen > m->gen) {
		ov_set_why(why, wl, "generation %llu newer than the header's %llu",
			   (unsigned long long)h->gen, (unsigned long long)m->gen);
		return -EBADMSG;
	}
	if (!all_zero(blk + R_RSV, OV_REC_HDR - R_RSV) ||
	    !all_zero(blk + OV_REC_HDR + (size_t)h->nrec * OV_REC_SIZE,
		      h->len - OV_REC_HDR - (size_t)h->nrec * OV_REC_SIZE)) {
		ov_set_why(why, wl, "reserved or padding bytes not zero");
		return -EBADMSG;
	}
	if ((h->prev != OV_NO_SLOT && h->prev >= m->log_end) || h->slot >= m->log_end) {
		ov_set_why(why, wl, "slot or previous slot past the log end");
		return -EBADMSG;
	}
	for (uint32_t i = 1; i < h->nrec; i++) {
		const uint8_t *r = blk + OV_REC_HDR + (size_t)i * OV_REC_SIZE;

		if (ov_get64(r) <= ov_get64(r - OV_REC_SIZE)) {
			ov_set_why(why, wl, "records not in increasing leaf order");
			return -EBADMSG;
		}
	}
	return 0;
}
