/* Unit tests for fs/mig/recover.c: what a mount decides for each journal a crash
 * left, and what the datastores hold afterwards.
 *
 * Every scenario is made the way the daemon leaves it: a file on datastore a, its
 * differencing file (an overlay over it, with writes and a discard, flushed) and
 * journal in a's .vdsfs/, the copy in b's .vdsfs/ or already renamed into place.
 * Then migs_recover() runs, as at mount, and the test checks the decision (the
 * record status would show) and its result on disk:
 *   roll back     the file on a reads as base + the overlay's writes; no leftovers
 *   roll forward  the file is the copy, on b, and gone from a; no leftovers
 *   resume        the file is routed through its overlay again (reads base + writes
 *                 before anything is mounted), the journal and its files stay
 *   left as is    nothing touched, not even the journal
 * with -o resume on and off (migs_set_resume).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsfix.h"
#include "journal.h"
#include "mig_int.h"
#include "overlay.h"

static struct fsfix fx;
static int fds_before;
static bool finished;

static void setup(void)
{
	fds_before = count_fds();
	finished = false;
	fsfix_init(&fx, 2);
}

static void teardown(void)
{
	if (!finished)
		fsfix_fini(&fx);
}

TestSuite(recover, .init = setup, .fini = teardown);

#define ID	5
#define FILE_	"disk.img"
#define SIZE	(3u << 20)

/* The file as the crash left it: base is what the base file holds, view what the
 * file read as (base with the overlay's changes). */
struct scen {
	uint8_t base[SIZE], view[SIZE];
	ino_t ino;
};

static struct scen sc;

static void path_on(int ds, const char *rel, char *p)
{
	fsfix_path(&fx, ds, rel, p, PATH_MAX);
}

/* The base on a, and (unless !diff) its differencing file: a write, and a discard,
 * flushed as the overlay leaves them for recovery. preparing: an empty one. */
static void make_file(bool diff, bool writes)
{
	char p[PATH_MAX], name[32], uuid[64];
	uint64_t seed = 99;
	struct overlay *ov;
	int base, dfd;

	rng_fill(&seed, sc.base, SIZE);
	path_on(0, FILE_, p);
	write_file(p, sc.base, SIZE);
	sc.ino = file_ino(p);
	memcpy(sc.view, sc.base, SIZE);
	if (!diff)
		return;
	base = open(p, O_RDWR | O_CLOEXEC);
	snprintf(name, sizeof(name), "mig-%d.diff", ID);
	dfd = openat(fx.store.ds[0].state_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	cr_assert(base >= 0 && dfd >= 0);
	snprintf(uuid, sizeof(uuid), "mig-%d:%lu", ID, (unsigned long)sc.ino);	/* as mig_prepare */
	struct overlay_create_opts co = { .size = -1, .base_uuid = uuid };

	cr_assert_eq(overlay_create(base, dfd, &co, &ov), 0);
	if (writes) {
		uint8_t buf[5000];

		memset(buf, 0xab, sizeof(buf));
		cr_assert_eq(overlay_write(ov, buf, sizeof(buf), (1u << 20) + 100), (ssize_t)sizeof(buf));
		cr_assert_eq(overlay_discard(ov, 2u << 20, 64u << 10), 0);
		cr_assert_eq(overlay_flush(ov), 0);
		cr_assert_eq(overlay_read(ov, sc.view, SIZE, 0), (ssize_t)SIZE);
	}
	overlay_close(ov);
	close(base);
	close(dfd);
	cr_assert(memcmp(sc.base, sc.view, SIZE) || !writes);
}

/* The copy on b: in the state folder, or (flipped) already renamed into place. */
static void make_copy(const uint8_t *content, bool flipped)
{
	char p[PATH_MAX], name[32];

	snprintf(name, sizeof(name), "mig-%d.copy", ID);
	if (flipped)
		path_on(1, FILE_, p);
	else
		fsfix_state_path(&fx, 1, name, p, sizeof(p));
	write_file(p, content, SIZE);
}

static void make_journal(enum mig_phase phase, const char *path, ino_t ino)
{
	struct mig *m = mig_new(fx.g, path, 0, 1, 0);

	cr_assert_not_null(m);
	m->id = ID;
	m->src_ino = ino;
	snprintf(m->name, sizeof(m->name), "mig-%d", ID);
	cr_assert_eq(mig_journal(m, phase), 0);
	mig_free(m);
}

/* The record recovery made (there must be exactly one). */
static struct mig_info rec;

static void recover(void)
{
	struct mig_info *list;
	size_t n;
	uint64_t dropped;

	cr_assert_eq(migs_recover(fx.g), 0);
	cr_assert_eq(mig_list(fx.g, 0, &list, &n, &dropped), 0);
	cr_assert_eq(n, 1, "%zu records after recovery", n);
	rec = list[0];
	rec.path = NULL;
	mig_info_free(list, n);
	cr_assert_eq(rec.id, ID);
	cr_assert(rec.recovered);
}

/* Recovery that must not make a record (the journal is not one it can act on). */
static void recover_nothing(void)
{
	struct mig_info *list;
	size_t n;
	uint64_t dropped;

	cr_assert_eq(migs_recover(fx.g), 0);
	cr_assert_eq(mig_list(fx.g, 0, &list, &n, &dropped), 0);
	cr_assert_eq(n, 0, "a record for a journal recovery should have left alone: %s",
		     n ? list[0].msg : "");
	mig_info_free(list, n);
}

static void expect_file(int ds, const uint8_t *content, const char *what)
{
	char p[PATH_MAX];
	size_t len;
	uint8_t *buf;

	path_on(ds, FILE_, p);
	buf = read_file(p, &len);
	cr_assert_not_null(buf, "%s: the file is not on %c", what, 'a' + ds);
	cr_assert(len == SIZE && !memcmp(buf, content, SIZE), "%s: the file on %c reads wrong",
		  what, 'a' + ds);
	free(buf);
}

static void expect_no_file(int ds)
{
	char p[PATH_MAX];

	path_on(ds, FILE_, p);
	cr_assert(!file_exists(p), "the file is still on %c", 'a' + ds);
}

static bool state_file(int ds, const char *suffix)
{
	char p[PATH_MAX], name[48];

	snprintf(name, sizeof(name), "mig-%d%s", ID, suffix);
	fsfix_state_path(&fx, ds, name, p, sizeof(p));
	return file_exists(p);
}

/* Nothing of the migration left in either state folder. */
static void expect_no_leftovers(void)
{
	cr_assert(!state_file(0, ".json"), "the journal is left");
	cr_assert(!state_file(0, ".diff"), "the differencing file is left");
	cr_assert(!state_file(1, ".copy"), "the copy is left");
}

/* --- roll back -------------------------------------------------------------------- */

static void expect_rolled_back(const char *was)
{
	char note[96];

	cr_assert_eq(rec.phase, MIG_CANCELLED, "%s", rec.msg);
	snprintf(note, sizeof(note), "rolled back after a crash (was %s)", was);
	cr_assert(strstr(rec.msg, note), "note: %s", rec.msg);
	expect_file(0, sc.view, "rolled back");
	expect_no_file(1);
	expect_no_leftovers();
}

/* preparing: the differencing file may be half made (here: cut short in its
 * header), and nothing went through it. */
Test(recover, preparing_drops_the_differencing_file)
{
	char p[PATH_MAX], name[32];
	uint8_t half[100] = { 0 };

	make_file(false, false);
	snprintf(name, sizeof(name), "mig-%d.diff", ID);
	fsfix_state_path(&fx, 0, name, p, sizeof(p));
	write_file(p, half, sizeof(half));
	make_journal(MIG_PREPARING, FILE_, sc.ino);
	recover();
	expect_rolled_back("preparing");
	expect_file(0, sc.base, "preparing");
}

static void rolls_back(enum mig_phase phase, bool resume, bool with_copy)
{
	migs_set_resume(fx.g, resume);
	make_file(true, true);
	if (with_copy)
		make_copy(sc.base, false);
	make_journal(phase, FILE_, sc.ino);
	recover();
	expect_rolled_back(mig_phase_name(phase));
}

Test(recover, copying_rolls_back_with_resume_off)
{
	rolls_back(MIG_COPYING, false, true);
}

Test(recover, converging_rolls_back_with_resume_off)
{
	rolls_back(MIG_CONVERGING, false, true);
}

/* A rollback was mirroring into the base: merging again finishes it, resume or not. */
Test(recover, cancelling_rolls_back_with_resume_on)
{
	rolls_back(MIG_CANCELLING, true, true);
}

Test(recover, cancelling_rolls_back_with_resume_off)
{
	rolls_back(MIG_CANCELLING, false, false);
}

/* Resume on, but what it needs is not there: roll back, and say why. */
Test(recover, converging_without_its_copy_rolls_back_even_with_resume_on)
{
	migs_set_resume(fx.g, true);
	make_file(true, true);
	make_journal(MIG_CONVERGING, FILE_, sc.ino);
	recover();
	cr_assert(strstr(rec.msg, "could not resume ("), "note: %s", rec.msg);
	expect_rolled_back("converging");
}

/* The file was renamed after the journal was last written: recovery finds the
 * migrated inode where it is now and merges into it there. */
Test(recover, a_renamed_file_is_rolled_back_where_it_is_now)
{
	migs_set_resume(fx.g, false);
	make_file(true, true);
	make_journal(MIG_COPYING, "old-name.img", sc.ino);
	recover();
	expect_rolled_back("copying");
}

/* The file was removed during the migration: nothing to merge into. */
Test(recover, a_removed_file_is_not_brought_back)
{
	char p[PATH_MAX];

	migs_set_resume(fx.g, false);
	make_file(true, true);
	make_journal(MIG_COPYING, FILE_, sc.ino);
	path_on(0, FILE_, p);
	cr_assert_eq(unlink(p), 0);
	recover();
	cr_assert_eq(rec.phase, MIG_CANCELLED);
	cr_assert(strstr(rec.msg, "removed during the migration"), "note: %s", rec.msg);
	expect_no_file(0);
	expect_no_file(1);
	expect_no_leftovers();
}

/* --- roll forward ----------------------------------------------------------------- */

static void expect_rolled_forward(void)
{
	cr_assert_eq(rec.phase, MIG_DONE, "%s", rec.msg);
	cr_assert(strstr(rec.msg, "finished the switch after a crash"), "note: %s", rec.msg);
	expect_file(1, sc.view, "rolled forward");
	expect_no_file(0);
	expect_no_leftovers();
}

static void rolls_forward(bool resume, bool flipped)
{
	migs_set_resume(fx.g, resume);
	make_file(true, true);
	make_copy(sc.view, flipped);	/* complete and durable: the file as it read */
	make_journal(MIG_SWITCHING, FILE_, sc.ino);
	recover();
	expect_rolled_forward();
}

Test(recover, switching_rolls_forward_with_resume_on)
{
	rolls_forward(true, false);
}

Test(recover, switching_rolls_forward_with_resume_off)
{
	rolls_forward(false, false);
}

/* Crashed after the copy's rename into place: only the source is left to remove. */
Test(recover, switching_after_the_flip_removes_the_source)
{
	rolls_forward(true, true);
}

/* Never over someone else's file: a file that took the name on b stays, and so
 * does the journal, for a human. */
Test(recover, switching_never_replaces_another_file)
{
	uint8_t other[SIZE];
	uint64_t seed = 5;

	rng_fill(&seed, other, SIZE);
	make_file(true, true);
	make_copy(sc.view, false);
	{
		char p[PATH_MAX];

		path_on(1, FILE_, p);
		write_file(p, other, SIZE);
	}
	make_journal(MIG_SWITCHING, FILE_, sc.ino);
	recover();
	cr_assert_eq(rec.phase, MIG_FAILED, "%s", rec.msg);
	cr_assert_eq(rec.is_error, true);
	expect_file(1, other, "the other file");
	expect_file(0, sc.base, "the source");
	cr_assert(state_file(0, ".json"), "the journal went");
	cr_assert(state_file(1, ".copy"), "the copy went");
}

/* The source path holds another inode now (the file was replaced before the
 * flip): that file is not the migration's to remove. */
Test(recover, switching_leaves_a_replaced_source_alone)
{
	char p[PATH_MAX], tmp[PATH_MAX];

	make_file(true, true);
	make_copy(sc.view, true);
	make_journal(MIG_SWITCHING, FILE_, sc.ino);
	path_on(0, FILE_, p);
	path_on(0, "new", tmp);
	write_file(tmp, "new", 3);
	cr_assert_eq(rename(tmp, p), 0);
	recover();
	cr_assert_eq(rec.phase, MIG_DONE, "%s", rec.msg);
	cr_assert(file_exists(p), "another file at the source path was removed");
	expect_file(1, sc.view, "rolled forward");
}

/* --- resume ------------------------------------------------------------------------ */

/* Resumed: queued (for the scheduler, which this test never starts), journal and
 * files kept, and the file already reads through its overlay. */
static void expect_resumed(const char *was)
{
	char note[64];
	struct node *n;
	struct vhandle *h;
	struct stat st;
	uint8_t *buf = malloc(SIZE);

	cr_assert_eq(rec.phase, MIG_QUEUED, "%s", rec.msg);
	cr_assert(rec.resumed);
	snprintf(note, sizeof(note), "resumed after a crash (was %s)", was);
	cr_assert(strstr(rec.msg, note), "note: %s", rec.msg);
	cr_assert(state_file(0, ".json") && state_file(0, ".diff"));
	expect_file(0, sc.base, "the base, untouched");

	cr_assert_eq(ns_entry(fx.ns, &fx.ns->nodes.root, FILE_, &n, &st), 0);
	cr_assert_eq(vfile_open(fx.ns, n, O_RDONLY, &h), 0);
	cr_assert(vfile_routed(h->vf), "the resumed file is not routed through its overlay");
	cr_assert_not_null(buf);
	cr_assert_eq(vfile_read(h, buf, SIZE, 0), (ssize_t)SIZE);
	cr_assert(!memcmp(buf, sc.view, SIZE), "the resumed file does not read as before the crash");
	vfile_release(fx.ns, h);
	node_forget(&fx.ns->nodes, n, 1);
	free(buf);

	/* Unmounted before the scheduler ever ran it: its file and fds are let go,
	 * its files stay for the next mount. */
	fsfix_fini(&fx);
	finished = true;
	cr_assert_eq(count_fds(), fds_before, "fds left open after shutdown");
}

Test(recover, copying_resumes_with_resume_on)
{
	migs_set_resume(fx.g, true);
	make_file(true, true);
	make_journal(MIG_COPYING, FILE_, sc.ino);
	recover();
	expect_resumed("copying");
}

Test(recover, converging_resumes_with_resume_on)
{
	migs_set_resume(fx.g, true);
	make_file(true, true);
	make_copy(sc.base, false);
	make_journal(MIG_CONVERGING, FILE_, sc.ino);
	recover();
	expect_resumed("converging");
}

/* --- left as is --------------------------------------------------------------------- */

static void expect_left_as_is(const char *journal)
{
	char p[PATH_MAX], name[32];
	size_t len;
	uint8_t *buf;

	expect_file(0, sc.base, "left as is");
	cr_assert(state_file(0, ".diff"), "the differencing file went");
	cr_assert(state_file(1, ".copy"), "the copy went");
	snprintf(name, sizeof(name), "mig-%d.json", ID);
	fsfix_state_path(&fx, 0, name, p, sizeof(p));
	buf = read_file(p, &len);
	cr_assert(buf && len == strlen(journal) && !memcmp(buf, journal, len), "the journal changed");
	free(buf);
}

static void left_as_is(const char *journal)
{
	char p[PATH_MAX], name[32];

	migs_set_resume(fx.g, true);
	make_file(true, true);
	make_copy(sc.base, false);
	snprintf(name, sizeof(name), "mig-%d.json", ID);
	fsfix_state_path(&fx, 0, name, p, sizeof(p));
	write_file(p, journal, strlen(journal));
	recover_nothing();
	expect_left_as_is(journal);
}

Test(recover, a_truncated_journal_is_left_as_is)
{
	left_as_is("{\"version\":1,\"id\":5,\"path\":\"disk.img\",\"src\":\"a\",\"dst\":\"b\",\"pha");
}

Test(recover, a_journal_of_an_unknown_version_is_left_as_is)
{
	left_as_is("{\"version\":2,\"id\":5,\"path\":\"disk.img\",\"src\":\"a\",\"dst\":\"b\","
		   "\"phase\":\"switching\"}");
}

Test(recover, a_journal_naming_an_unmounted_datastore_is_left_as_is)
{
	left_as_is("{\"version\":1,\"id\":5,\"path\":\"disk.img\",\"src\":\"a\",\"dst\":\"zz\","
		   "\"phase\":\"switching\"}");
}

/* A differencing file that cannot be trusted: serving the base alone would be
 * wrong, so nothing is touched and the record says failed. */
Test(recover, a_corrupt_differencing_file_stops_the_rollback)
{
	char p[PATH_MAX], name[32], junk[4096];
	struct stat st;
	int fd;

	migs_set_resume(fx.g, false);
	make_file(true, true);
	make_journal(MIG_COPYING, FILE_, sc.ino);
	snprintf(name, sizeof(name), "mig-%d.diff", ID);
	fsfix_state_path(&fx, 0, name, p, sizeof(p));
	memset(junk, 0x33, sizeof(junk));
	fd = open(p, O_WRONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	/* All of it: the overlay keeps two headers and repairs one from the other. */
	cr_assert_eq(fstat(fd, &st), 0);
	for (off_t off = 0; off < st.st_size; off += (off_t)sizeof(junk))
		cr_assert_eq(pwrite(fd, junk, sizeof(junk), off), (ssize_t)sizeof(junk));
	close(fd);
	recover();
	cr_assert_eq(rec.phase, MIG_FAILED, "%s", rec.msg);
	cr_assert(strstr(rec.msg, "recovery refused this file"), "note: %s", rec.msg);
	expect_file(0, sc.base, "the base");
	cr_assert(state_file(0, ".json") && state_file(0, ".diff"), "evidence removed");
}

/* The longest path a journal can name, of the characters that take the most room
 * once escaped, is still read back by recovery (and rolled back). Relative to the
 * datastore: its absolute path would be longer than PATH_MAX. */
Test(recover, a_journal_of_the_longest_path_is_read)
{
	int dfd = fx.store.ds[0].fd, fd;
	char rel[PATH_MAX] = "", comp[201];
	uint8_t *buf = malloc(SIZE);
	size_t used = 0;

	memset(comp, '\x01', 200);
	comp[200] = 0;
	migs_set_resume(fx.g, false);
	make_file(true, true);
	/* Move the file down a chain of folders named in control characters. */
	while (used + 201 + sizeof(FILE_) < 4096) {
		used += (size_t)snprintf(rel + used, sizeof(rel) - used, "%s/", comp);
		cr_assert_eq(mkdirat(dfd, rel, 0755), 0, "%s", strerror(errno));
	}
	snprintf(rel + used, sizeof(rel) - used, "%s", FILE_);
	cr_assert_eq(renameat(dfd, FILE_, dfd, rel), 0, "%s", strerror(errno));
	make_journal(MIG_COPYING, rel, sc.ino);
	recover();
	cr_assert_eq(rec.phase, MIG_CANCELLED, "%s", rec.msg);
	fd = openat(dfd, rel, O_RDONLY | O_CLOEXEC);
	cr_assert(fd >= 0 && buf);
	cr_assert_eq(pread(fd, buf, SIZE, 0), (ssize_t)SIZE);
	cr_assert(!memcmp(buf, sc.view, SIZE), "not rolled back");
	close(fd);
	free(buf);
	expect_no_leftovers();
}
