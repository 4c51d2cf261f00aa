/* test_corrupt.c - damaged files are detected, never read as valid.
 *
 * A healthy differencing file is built once per test, then each case copies it,
 * damages the copy in one way and asserts three things: overlay_open refuses it
 * with the expected error (or, for a damaged older header slot, falls back to the
 * previous commit), overlay_check counts a problem, and `vds-diff check` exits 1.
 * Cases that need a structure with a VALID checksum but wrong contents re-encode
 * it with the library's own encoder, so they reach the field checks behind the
 * checksum.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "helpers.h"
#include "internal.h"

#define SIZE (1u << 20)

static struct tdir d;
static char base_p[300], gold_p[300];
static int base_fd;
static uint8_t *gold;
static size_t gold_len;

/* Base + a diff at generation 3: data, zero and base blocks, both headers valid. */
static void build(void)
{
	uint8_t buf[20000];
	struct stat st;
	int diff;
	struct overlay *ov;

	tdir_new(&d);
	tdir_file(&d, "base", base_p, sizeof(base_p));
	tdir_file(&d, "gold", gold_p, sizeof(gold_p));
	base_fd = make_base(base_p, SIZE, 5, NULL);
	diff = open_new(gold_p);
	ov = ov_new(base_fd, diff, 4096, "u1");
	memset(buf, 0x5a, sizeof(buf));
	cr_assert_eq(overlay_write(ov, buf, sizeof(buf), 1000), (ssize_t)sizeof(buf));
	cr_assert_eq(overlay_flush(ov), 0);
	cr_assert_eq(overlay_discard(ov, 65536, 8192), 0);
	cr_assert_eq(overlay_write(ov, buf, 5000, 500000), 5000);
	cr_assert_eq(overlay_flush(ov), 0);
	overlay_close(ov);
	cr_assert_eq(fstat(diff, &st), 0);
	gold_len = (size_t)st.st_size;
	gold = malloc(gold_len);
	cr_assert_eq(pread(diff, gold, gold_len, 0), (ssize_t)gold_len);
	close(diff);
	cr_assert_eq(overlay_check(open_rw(gold_p), NULL, NULL), 0, "gold file not healthy");
}

static void teardown(void)
{
	close(base_fd);
	free(gold);
	tdir_rm(&d);
}

TestSuite(corrupt, .init = build, .fini = teardown);

static void read_meta(const uint8_t *img, unsigned slot, struct ov_meta *m)
{
	cr_assert_eq(ov_header_decode(img + slot * OV_HDR_SLOT, OV_HDR_LEN, m, NULL, 0), 0);
}

static unsigned active_slot(const uint8_t *img)
{
	struct ov_meta a, b;

	read_meta(img, 0, &a);
	read_meta(img, 1, &b);
	return b.gen > a.gen;
}

static void reencode_header(uint8_t *img, unsigned slot, void (*edit)(struct ov_meta *))
{
	struct ov_meta m;

	read_meta(img, slot, &m);
	edit(&m);
	ov_header_encode(&m, img + slot * OV_HDR_SLOT);
}

/* File offset of the record block `back` blocks before the active chain's head. */
static uint64_t chain_block(const uint8_t *img, unsigned back)
{
	struct ov_meta m;
	struct ov_rechdr h;
	uint64_t slot;

	read_meta(img, active_slot(img), &m);
	slot = m.chain_head;
	cr_assert_neq(slot, OV_NO_SLOT, "empty chain");
	for (unsigned i = 0; i < back; i++) {
		cr_assert_eq(ov_rec_decode(img + m.data_off + slot * 4096, 4096, 4096, &m, &h,
					   NULL, 0), 0);
		slot = h.prev;
		cr_assert_neq(slot, OV_NO_SLOT, "chain shorter than %u", back + 1);
	}
	return m.data_off + slot * 4096;
}

/* Re-encode a record block (valid checksum) after edit() changed its header or
 * its records. */
static void reencode_block(uint8_t *img, uint64_t off,
			   void (*edit)(struct ov_rechdr *, uint8_t *recs))
{
	struct ov_meta m;
	struct ov_rechdr h;
	uint8_t recs[4096];

	read_meta(img, active_slot(img), &m);
	cr_assert_eq(ov_rec_decode(img + off, 4096, 4096, &m, &h, NULL, 0), 0);
	memcpy(recs, img + off + OV_REC_HDR, (size_t)h.nrec * OV_REC_SIZE);
	edit(&h, recs);
	ov_rec_encode(img + off, &h, recs);
}

/* Entry i of record r. */
static void put_entry(uint8_t *recs, unsigned r, unsigned i, uint32_t v)
{
	ov_put32(recs + r * OV_REC_SIZE + 8 + 4 * i, v);
}

/* Write the damaged image to a new file and assert the three outcomes.  Returns
 * the open result for extra checks. */
static void expect_damage(const char *name, const uint8_t *img, size_t len, int open_err)
{
	char p[300];
	char why[256] = "";
	struct overlay_open_opts o = { .base_uuid = "u1", .flags = OVERLAY_OPEN_RDONLY,
				       .why = why, .why_len = sizeof(why) };
	struct overlay *ov = NULL;
	int fd, ret;

	tdir_file(&d, name, p, sizeof(p));
	fd = open_new(p);
	cr_assert_eq(pwrite(fd, img, len, 0), (ssize_t)len);
	ret = overlay_open(base_fd, fd, &o, &ov);
	cr_assert_eq(ret, open_err, "%s: open returned %d (%s), want %d", name, ret, why,
		     open_err);
	if (!open_err)
		overlay_close(ov);
	else
		cr_assert_neq(why[0], 0, "%s: no reason given", name);
	cr_assert_gt(overlay_check(fd, NULL, NULL), 0, "%s: check found nothing", name);
	cr_assert_eq(run_vds_diff("check", p, NULL), 1, "%s: vds-diff check did not fail", name);
	close(fd);
}

static uint8_t *copy(void)
{
	uint8_t *c = malloc(gold_len);

	memcpy(c, gold, gold_len);
	return c;
}

Test(corrupt, healthy_file_checks_clean)
{
	cr_assert_eq(run_vds_diff("check", gold_p, NULL), 0);
	cr_assert_eq(run_vds_diff("check", "--base", base_p, "--uuid", "u1", gold_p, NULL), 0);
}

Test(corrupt, newest_header_damaged_falls_back_but_check_fails)
{
	uint8_t *c = copy();

	c[active_slot(c) * OV_HDR_SLOT + 300] ^= 0x40;
	expect_damage("newest-hdr", c, gold_len, 0);
	free(c);
}

Test(corrupt, older_header_damaged)
{
	uint8_t *c = copy();

	c[(1 - active_slot(c)) * OV_HDR_SLOT + 30] ^= 1;
	expect_damage("older-hdr", c, gold_len, 0);
	free(c);
}

Test(corrupt, both_headers_damaged)
{
	uint8_t *c = copy();

	c[40] ^= 1;
	c[OV_HDR_SLOT + 4000] ^= 0x80;
	expect_damage("both-hdr", c, gold_len, -EBADMSG);
	free(c);
}

Test(corrupt, magic_wiped)
{
	uint8_t *c = copy();

	memset(c, 0, 8);
	memset(c + OV_HDR_SLOT, 0, 8);
	expect_damage("magic", c, gold_len, -EBADMSG);
	free(c);
}

Test(corrupt, unknown_version_refused)
{
	uint8_t *c = copy();

	for (unsigned s = 0; s < 2; s++) {
		c[s * OV_HDR_SLOT + 8] = 3;	/* version field, then fix the checksum */
		uint32_t len = OV_PAGE_SIZE, crc;

		memcpy(&len, c + s * OV_HDR_SLOT + 12, 4);
		memset(c + s * OV_HDR_SLOT + 16, 0, 4);
		crc = ov_crc32c(0, c + s * OV_HDR_SLOT, len);
		memcpy(c + s * OV_HDR_SLOT + 16, &crc, 4);
	}
	expect_damage("version", c, gold_len, -ENOTSUP);
	free(c);
}

static void wrong_counts(struct ov_meta *m) { m->ndata += 1; }
static void log_too_short(struct ov_meta *m) { m->log_end = m->chain_head - 1; }
static void size_mismatch(struct ov_meta *m) { m->nblocks += 1; }
static void chain_shorter(struct ov_meta *m) { m->chain_len -= 1; }
static void chain_longer(struct ov_meta *m) { m->chain_len += 1; }
static void head_on_data(struct ov_meta *m) { m->chain_head = 0; }

Test(corrupt, header_counts_disagree_with_map)
{
	uint8_t *c = copy();

	reencode_header(c, active_slot(c), wrong_counts);
	expect_damage("counts", c, gold_len, -EBADMSG);
	free(c);
}

/* Both slots, so the open cannot fall back to the other one. */
static void both_headers(uint8_t *c, void (*edit)(struct ov_meta *))
{
	reencode_header(c, 0, edit);
	reencode_header(c, 1, edit);
}

Test(corrupt, header_log_end_before_referenced_slots)
{
	uint8_t *c = copy();

	both_headers(c, log_too_short);
	expect_damage("log-end", c, gold_len, -EBADMSG);
	free(c);
}

Test(corrupt, header_geometry_inconsistent)
{
	uint8_t *c = copy();

	both_headers(c, size_mismatch);
	expect_damage("geometry", c, gold_len, -EBADMSG);
	free(c);
}

Test(corrupt, header_chain_length_wrong)
{
	uint8_t *c = copy();

	both_headers(c, chain_shorter);
	expect_damage("chain-short", c, gold_len, -EBADMSG);
	memcpy(c, gold, gold_len);
	both_headers(c, chain_longer);
	expect_damage("chain-long", c, gold_len, -EBADMSG);
	free(c);
}

Test(corrupt, header_chain_head_on_a_data_slot)
{
	uint8_t *c = copy();

	both_headers(c, head_on_data);
	expect_damage("head-data", c, gold_len, -EBADMSG);
	free(c);
}

Test(corrupt, record_block_bit_flip)
{
	uint8_t *c = copy();

	c[chain_block(c, 0) + 100] ^= 4;
	expect_damage("rec-flip", c, gold_len, -EBADMSG);
	memcpy(c, gold, gold_len);
	c[chain_block(c, 1) + 7] ^= 0x10;	/* the older block, in its checksum */
	expect_damage("rec-flip-old", c, gold_len, -EBADMSG);
	free(c);
}

static void wrong_slot(struct ov_rechdr *h, uint8_t *r) { (void)r; h->slot += 1; }
static void wrong_seq(struct ov_rechdr *h, uint8_t *r) { (void)r; h->seq += 1; }
static void from_future(struct ov_rechdr *h, uint8_t *r) { (void)r; h->gen += 5; }
static void ends_early(struct ov_rechdr *h, uint8_t *r) { (void)r; h->prev = OV_NO_SLOT; }
static void state_past_end(struct ov_rechdr *h, uint8_t *r)
{
	(void)h;
	ov_put64(r, 16);	/* leaf 16 = blocks 256..271: the file has 256 blocks */
}
static void slot_past_log(struct ov_rechdr *h, uint8_t *r) { (void)h; put_entry(r, 0, 0, 1u << 30); }
static void slot_twice(struct ov_rechdr *h, uint8_t *r)
{
	(void)h;
	put_entry(r, 0, 0, (uint32_t)ov_get32(r + 8 + 4 * 1));	/* block 0 = block 1's slot */
}
static void out_of_order(struct ov_rechdr *h, uint8_t *r)
{
	uint8_t t[OV_REC_SIZE];

	cr_assert_geq(h->nrec, 2);
	memcpy(t, r, OV_REC_SIZE);
	memcpy(r, r + OV_REC_SIZE, OV_REC_SIZE);
	memcpy(r + OV_REC_SIZE, t, OV_REC_SIZE);
}
static void no_records(struct ov_rechdr *h, uint8_t *r) { (void)r; h->nrec = 0; }

static void bad_block(const char *name, unsigned back,
		      void (*edit)(struct ov_rechdr *, uint8_t *))
{
	uint8_t *c = copy();

	reencode_block(c, chain_block(c, back), edit);
	expect_damage(name, c, gold_len, -EBADMSG);
	free(c);
}

Test(corrupt, record_block_fields)
{
	bad_block("rec-slot", 0, wrong_slot);
	bad_block("rec-seq", 0, wrong_seq);
	bad_block("rec-gen", 0, from_future);
	bad_block("rec-prev", 0, ends_early);
	bad_block("rec-count", 0, no_records);
}

Test(corrupt, record_entries)
{
	bad_block("rec-past-end", 1, state_past_end);
	bad_block("rec-slot-past-log", 0, slot_past_log);
	bad_block("rec-order", 0, out_of_order);
	bad_block("rec-slot-twice", 1, slot_twice);
}

/* An older record is superseded by a newer one for the same leaf, but it must
 * still be valid: a damaged old block means the chain itself is damaged. */
Test(corrupt, superseded_record_still_checked)
{
	bad_block("rec-old-past-log", 1, slot_past_log);
}

Test(corrupt, truncated_files)
{
	expect_damage("trunc-log", gold, gold_len - 100, -EBADMSG);
	expect_damage("trunc-data", gold, OV_DATA_ALIGN + 5000, -EBADMSG);
	expect_damage("trunc-hdr", gold, OV_HDR_SLOT + 100, -EBADMSG);
	expect_damage("trunc-empty", gold, 0, -EBADMSG);
}

/* A crash in the middle of a commit leaves a torn newest header: the file opens
 * at the previous generation with everything flushed up to then, and a writable
 * open repairs the header so check is clean again. */
Test(corrupt, torn_commit_opens_previous_generation)
{
	char p[300];
	uint8_t *c = copy(), buf[5000], want[5000];
	struct overlay_stats st;
	struct overlay *ov;
	int fd;

	/* Tear the newest header the way a crash does: only its first sector landed. */
	memset(c + active_slot(c) * OV_HDR_SLOT + 512, 0xee, 3584);
	tdir_file(&d, "torn", p, sizeof(p));
	fd = open_new(p);
	cr_assert_eq(pwrite(fd, c, gold_len, 0), (ssize_t)gold_len);
	cr_assert_eq(run_vds_diff("check", p, NULL), 1);
	ov = ov_reopen(base_fd, fd, "u1");
	overlay_stats(ov, &st);
	cr_assert_eq(st.gen, 3, "opened at generation %llu", (unsigned long long)st.gen);
	/* Generation 2 had the first write; the later one (at 500000) is gone, so
	 * that range reads the base again. */
	memset(want, 0x5a, sizeof(want));
	cr_assert_eq(overlay_read(ov, buf, sizeof(buf), 1000), (ssize_t)sizeof(buf));
	cr_assert(!memcmp(buf, want, sizeof(buf)));
	cr_assert_eq(overlay_read(ov, buf, sizeof(buf), 500000), (ssize_t)sizeof(buf));
	cr_assert_eq(pread(base_fd, want, sizeof(want), 500000), (ssize_t)sizeof(want));
	cr_assert(!memcmp(buf, want, sizeof(buf)), "unflushed-at-gen-2 write visible");
	overlay_close(ov);
	cr_assert_eq(run_vds_diff("check", p, NULL), 0, "open did not repair the header");
	close(fd);
	free(c);
}

Test(corrupt, wrong_base_refused)
{
	char other_p[300], small_p[300], why[256];
	struct overlay_open_opts o = { .base_uuid = "u1", .why = why, .why_len = sizeof(why) };
	struct overlay_open_opts wrong_uuid = { .base_uuid = "u2" };
	struct overlay *ov;
	int gold_fd = open_rw(gold_p), other, small;

	tdir_file(&d, "other", other_p, sizeof(other_p));
	tdir_file(&d, "small", small_p, sizeof(small_p));
	other = make_base(other_p, SIZE, 6, NULL);	/* same size, other contents */
	small = make_base(small_p, SIZE - 4096, 5, NULL);
	cr_assert_eq(overlay_open(other, gold_fd, &o, &ov), -ESTALE);
	cr_assert_eq(overlay_open(small, gold_fd, &o, &ov), -ESTALE);
	cr_assert_eq(overlay_open(base_fd, gold_fd, &wrong_uuid, &ov), -ESTALE);
	cr_assert_eq(run_vds_diff("check", "--base", other_p, "--uuid", "u1", gold_p, NULL), 1);
	cr_assert_eq(run_vds_diff("merge", "--uuid", "u1", other_p, gold_p, small_p, NULL), 1);
	close(other);
	close(small);
	close(gold_fd);
}
