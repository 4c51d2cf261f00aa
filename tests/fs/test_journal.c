/* Unit tests for fs/mig/journal.c: a migration's record on the source datastore,
 * written as the daemon writes it (mig_journal) and read back as recovery reads it
 * (journal_parse), and the records recovery must refuse to act on.
 *
 * The journal is JSON replaced by rename, so a crash leaves the old record or the
 * new one, never half of one; it carries no checksum. What a damaged record can be
 * is therefore: cut short (a filesystem that lost its tail), not JSON, a field
 * missing or of the wrong type, a phase or version this daemon does not know.
 * Every one of them must be refused, never read as some default.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsfix.h"
#include "journal.h"
#include "mig_int.h"

static struct fsfix fx;

static void setup(void)
{
	fsfix_init(&fx, 2);
}

static void teardown(void)
{
	fsfix_fini(&fx);
}

TestSuite(journal, .init = setup, .fini = teardown);

/* A migration of path from datastore a to b, as the registry would make it. */
static struct mig *mig_of(const char *path, uint64_t id)
{
	struct mig *m = mig_new(fx.g, path, 0, 1, 0);

	cr_assert_not_null(m);
	m->id = id;
	snprintf(m->name, sizeof(m->name), "mig-%llu", (unsigned long long)id);
	return m;
}

/* The text of state file name on datastore a ("" when absent). */
static char *state_text(const char *name)
{
	char p[PATH_MAX];
	size_t len;
	uint8_t *buf;
	char *s;

	fsfix_state_path(&fx, 0, name, p, sizeof(p));
	buf = read_file(p, &len);
	s = malloc(len + 1);
	cr_assert_not_null(s);
	if (buf)
		memcpy(s, buf, len);
	s[len] = 0;
	free(buf);
	return s;
}

Test(journal, every_phase_reads_back_as_written)
{
	struct mig *m = mig_of("vm/disk one.img", 7);

	m->src_ino = 123456789;
	for (int p = 0; p < MIG_NPHASES; p++) {
		struct journal_rec r;
		char *text;

		cr_assert_eq(mig_journal(m, (enum mig_phase)p), 0);
		cr_assert_eq(m->journal_phase, p);
		text = state_text("mig-7.json");
		cr_assert_eq(journal_parse(text, &r), 0, "phase %s: %s", mig_phase_name(p), text);
		cr_assert_eq(r.phase, (enum mig_phase)p);
		cr_assert_eq(r.id, 7);
		cr_assert_str_eq(r.path, "vm/disk one.img");
		cr_assert_str_eq(r.src, "a");
		cr_assert_str_eq(r.dst, "b");
		cr_assert_eq(r.src_ino, 123456789);
		free(text);
	}
	mig_free(m);
}

/* Names are bytes: quotes, backslashes, control characters and UTF-8 survive, and
 * so does the longest path a record can name. */
Test(journal, any_path_reads_back_byte_for_byte)
{
	char longest[4096];
	const char *paths[] = { "a\"b\\c", "tab\there/nl\nthere", "\x01\x1f\x7f", "ünï/cödé", "/",
				longest };

	for (size_t i = 0; i < sizeof(longest) - 1; i++)
		longest[i] = i % 2 ? '/' : (char)(1 + i % 31);	/* the worst to escape */
	longest[sizeof(longest) - 1] = 0;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct mig *m = mig_of(paths[i], 3);
		struct journal_rec r;
		char *text;

		cr_assert_eq(mig_journal(m, MIG_COPYING), 0);
		text = state_text("mig-3.json");
		cr_assert_eq(journal_parse(text, &r), 0, "path %zu", i);
		cr_assert_str_eq(r.path, paths[i], "path %zu", i);
		free(text);
		mig_free(m);
	}
}

/* Staged is not current: a crash between the two leaves the old record, which
 * recovery reads; the staged one is only ever renamed over it. */
Test(journal, a_staged_record_is_not_current_until_committed)
{
	struct mig *m = mig_of("f", 9);
	struct journal_rec r;
	unsigned gen;
	bool current = false;
	char *text;

	cr_assert_eq(mig_journal(m, MIG_CONVERGING), 0);
	lk_lock(&m->jlock, LK_JOURNAL);
	cr_assert_eq(journal_stage(m, MIG_SWITCHING, &gen), 0);
	lk_unlock(&m->jlock, LK_JOURNAL);
	text = state_text("mig-9.json");
	cr_assert_eq(journal_parse(text, &r), 0);
	cr_assert_eq(r.phase, MIG_CONVERGING, "staging changed the current record");
	free(text);
	text = state_text("mig-9.json.next");
	cr_assert_eq(journal_parse(text, &r), 0);
	cr_assert_eq(r.phase, MIG_SWITCHING);
	free(text);

	lk_lock(&m->jlock, LK_JOURNAL);
	cr_assert_eq(journal_commit(m, &current), 0);
	lk_unlock(&m->jlock, LK_JOURNAL);
	cr_assert(current);
	text = state_text("mig-9.json");
	cr_assert_eq(journal_parse(text, &r), 0);
	cr_assert_eq(r.phase, MIG_SWITCHING);
	free(text);
	text = state_text("mig-9.json.next");
	cr_assert_str_eq(text, "", "the staged record is still there after the commit");
	free(text);

	lk_lock(&m->jlock, LK_JOURNAL);
	cr_assert_eq(journal_remove(m), 0);
	lk_unlock(&m->jlock, LK_JOURNAL);
	text = state_text("mig-9.json");
	cr_assert_str_eq(text, "");
	free(text);
	mig_free(m);
}

/* A record cut short anywhere is not a record. */
Test(journal, a_truncated_record_is_refused_at_every_length)
{
	struct mig *m = mig_of("vm/disk.img", 12);
	struct journal_rec r;
	char *text;
	size_t len;

	m->src_ino = 42;
	cr_assert_eq(mig_journal(m, MIG_SWITCHING), 0);
	text = state_text("mig-12.json");
	len = strlen(text);
	cr_assert_eq(journal_parse(text, &r), 0);
	for (size_t cut = 0; cut < len; cut++) {
		char *part = strndup(text, cut);

		cr_assert_eq(journal_parse(part, &r), -EBADMSG, "%zu of %zu bytes: \"%s\"", cut, len,
			     part);
		free(part);
	}
	free(text);
	mig_free(m);
}

#define GOOD_FIELDS "\"id\":5,\"path\":\"f\",\"src\":\"a\",\"dst\":\"b\",\"phase\":\"copying\""

/* The control record is accepted: the refusals below are about the one thing each
 * changes. */
Test(journal, a_minimal_record_is_accepted)
{
	struct journal_rec r;

	cr_assert_eq(journal_parse("{\"version\":1," GOOD_FIELDS "}", &r), 0);
	cr_assert(r.id == 5 && r.phase == MIG_COPYING && r.src_ino == 0);
	cr_assert_eq(journal_parse("{\"version\":1," GOOD_FIELDS ",\"src_ino\":77}", &r), 0);
	cr_assert_eq(r.src_ino, 77);
}

Test(journal, a_record_of_an_unknown_version_is_refused)
{
	struct journal_rec r;

	cr_assert_eq(journal_parse("{\"version\":2," GOOD_FIELDS "}", &r), -EPROTONOSUPPORT);
	cr_assert_eq(journal_parse("{\"version\":0," GOOD_FIELDS "}", &r), -EPROTONOSUPPORT);
	cr_assert_eq(journal_parse("{" GOOD_FIELDS "}", &r), -EBADMSG, "no version");
	cr_assert_eq(journal_parse("{\"version\":\"1\"," GOOD_FIELDS "}", &r), -EBADMSG);
	cr_assert_eq(journal_parse("{\"version\":1.5," GOOD_FIELDS "}", &r), -EBADMSG);
}

Test(journal, a_damaged_record_is_refused)
{
	const char *bad[] = {
		"",
		"null",
		"[1,2]",
		"\"copying\"",
		"{\"version\":1}",
		/* each field missing */
		"{\"version\":1,\"path\":\"f\",\"src\":\"a\",\"dst\":\"b\",\"phase\":\"copying\"}",
		"{\"version\":1,\"id\":5,\"src\":\"a\",\"dst\":\"b\",\"phase\":\"copying\"}",
		"{\"version\":1,\"id\":5,\"path\":\"f\",\"dst\":\"b\",\"phase\":\"copying\"}",
		"{\"version\":1,\"id\":5,\"path\":\"f\",\"src\":\"a\",\"phase\":\"copying\"}",
		"{\"version\":1,\"id\":5,\"path\":\"f\",\"src\":\"a\",\"dst\":\"b\"}",
		/* wrong types and values */
		"{\"version\":1,\"id\":0,\"path\":\"f\",\"src\":\"a\",\"dst\":\"b\",\"phase\":\"copying\"}",
		"{\"version\":1,\"id\":-5,\"path\":\"f\",\"src\":\"a\",\"dst\":\"b\",\"phase\":\"copying\"}",
		"{\"version\":1,\"id\":\"5\",\"path\":\"f\",\"src\":\"a\",\"dst\":\"b\",\"phase\":\"copying\"}",
		"{\"version\":1,\"id\":5,\"path\":7,\"src\":\"a\",\"dst\":\"b\",\"phase\":\"copying\"}",
		"{\"version\":1,\"id\":5,\"path\":\"f\",\"src\":null,\"dst\":\"b\",\"phase\":\"copying\"}",
		"{\"version\":1,\"id\":5,\"path\":\"f\",\"src\":\"a\",\"dst\":\"b\",\"phase\":\"copy\"}",
		"{\"version\":1,\"id\":5,\"path\":\"f\",\"src\":\"a\",\"dst\":\"b\",\"phase\":\"COPYING\"}",
		"{\"version\":1,\"id\":5,\"path\":\"f\",\"src\":\"a\",\"dst\":\"b\",\"phase\":2}",
		/* a flipped byte in the middle: no longer JSON */
		"{\"version\":1,\"id\":5,\"path\":\"f\"\x01\"src\":\"a\",\"dst\":\"b\",\"phase\":\"copying\"}",
	};
	struct journal_rec r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(journal_parse(bad[i], &r), -EBADMSG, "accepted: %s", bad[i]);
}

/* Names longer than the record's fields are refused, not cut (a cut path would
 * name another file). */
Test(journal, an_overlong_name_is_refused_not_cut)
{
	static char text[16384];
	char path[4097], ds[34];
	struct journal_rec r;

	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = 0;
	snprintf(text, sizeof(text), "{\"version\":1,\"id\":5,\"path\":\"%s\",\"src\":\"a\","
		 "\"dst\":\"b\",\"phase\":\"copying\"}", path);
	cr_assert_eq(journal_parse(text, &r), -EBADMSG);
	path[4095] = 0;
	snprintf(text, sizeof(text), "{\"version\":1,\"id\":5,\"path\":\"%s\",\"src\":\"a\","
		 "\"dst\":\"b\",\"phase\":\"copying\"}", path);
	cr_assert_eq(journal_parse(text, &r), 0, "the longest path was refused");
	memset(ds, 'd', sizeof(ds) - 1);
	ds[sizeof(ds) - 1] = 0;
	snprintf(text, sizeof(text), "{\"version\":1,\"id\":5,\"path\":\"f\",\"src\":\"%s\","
		 "\"dst\":\"b\",\"phase\":\"copying\"}", ds);
	cr_assert_eq(journal_parse(text, &r), -EBADMSG);
}
