/* mig_space.c - will the destination hold what a migration writes there?
 *
 * A thin disk copies only its data: the copier skips holes, so a 2 TiB disk that
 * holds 1 GiB needs about 1 GiB on the destination, not 2 TiB (nor size/8, the old
 * rule). What the destination needs for a file is
 *     allocated      its allocated bytes now (st_blocks): what the copy takes
 *   + differencing   what its differencing file holds, merged into the copy during
 *                    converge (0 before the migration starts)
 *   + growth         its recent write rate (wrate.h) times the migration's estimated
 *                    time: writes meanwhile may allocate new blocks (an upper bound:
 *                    an overwrite allocates nothing)
 *   + pending        what migrations already headed to that datastore still have to
 *                    write there
 *   + margin         the request's "space_margin", by default MIG_SPACE_MARGIN
 *                    (64 MiB, as vds-copy): metadata, and everyone else on that
 *                    filesystem
 * The estimated time is allocated bytes / copy rate (the request's bwlimit, else
 * MIG_SPACE_COPY_RATE, 64 MiB/s: a modest disk), and at least MIG_SPACE_MIN_SECS
 * (10 s), so a file written in bursts still counts 10 s of its rate. A request
 * moving several files to one datastore is checked for their sum as well.
 *
 * While a migration runs, its copy progress and its converge pass check that the
 * destination still has room for what is left to write (the rest of the copy, the
 * differencing file not yet merged) and fail it at once, naming the datastore,
 * rather than at ENOSPC much later. "space_check": false skips both: a destination
 * that compresses or deduplicates may hold more than its free space says. A
 * filesystem that reports no size (f_blocks 0) is never checked (as copier/space.c).
 */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "mig_int.h"

#define MIG_SPACE_COPY_RATE	(64ull << 20)
#define MIG_SPACE_MIN_SECS	10.0

/* "1.2 GiB", "64 MiB", "512 KiB", "0": powers of 1024, one decimal below 10. */
static const char *human(uint64_t b, char buf[24])
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double x = (double)b;
	int u = 0;

	if (!b)
		return "0";
	while (x >= 1024 && u < 6)
		x /= 1024, u++;
	snprintf(buf, 24, x < 10 && u ? "%.1f %s" : "%.0f %s", x, unit[u]);
	return buf;
}

void mig_space_add(struct migs *g, struct mig_space *sp, const struct stat *st)
{
	sp->allocated += (uint64_t)st->st_blocks * 512;
	sp->rate += node_write_rate(&g->ns->nodes, st->st_dev, st->st_ino);
	sp->files++;
}

/* With g->lock held: what the active migrations to dst have left to write. */
static void pending_locked(struct migs *g, int dst, struct mig_space *sp)
{
	for (struct mig *m = g->head; m; m = m->next) {
		if (mig_phase_final(m->phase) || m->dst != dst)
			continue;
		sp->pending += m->space_need > m->done ? m->space_need - m->done : 0;
		sp->npending++;
	}
}

int mig_space_verdict(struct migs *g, int dst, struct mig_space *sp, const struct mig_opts *o,
		      const char *what, char *err, size_t len)
{
	char b[7][24], pend[160] = "";
	uint64_t avail, total, copy_rate = o->bwlimit ? o->bwlimit : MIG_SPACE_COPY_RATE;

	sp->secs = (double)sp->allocated / (double)copy_rate;
	if (sp->secs < MIG_SPACE_MIN_SECS)
		sp->secs = MIG_SPACE_MIN_SECS;
	sp->growth = (uint64_t)((double)sp->rate * sp->secs);
	sp->margin = o->space_margin;
	if (!o->space_check || ds_space(&g->store->ds[dst], &avail, &total) || !total)
		return 0;
	migs_lock(g);
	pending_locked(g, dst, sp);
	migs_unlock(g);
	sp->need = sp->allocated + sp->diff + sp->growth + sp->pending + sp->margin;
	if (avail >= sp->need)
		return 0;
	if (sp->npending)
		snprintf(pend, sizeof(pend), " + %s still to write for %u migration%s already headed there",
			 human(sp->pending, b[6]), sp->npending, sp->npending > 1 ? "s" : "");
	snprintf(err, len, "no room on datastore %s for %s: %s free, %s needed = %s allocated + %s "
		 "differencing + %s growth (%s/s for ~%.0f s)%s + %s margin", g->store->ds[dst].name, what,
		 human(avail, b[0]), human(sp->need, b[1]), human(sp->allocated, b[2]),
		 human(sp->diff, b[3]), human(sp->growth, b[4]), human(sp->rate, b[5]), sp->secs, pend,
		 human(sp->margin, b[6]));
	return -ENOSPC;
}

int mig_space_left(struct mig *m, uint64_t still)
{
	char why[200], a[24], s[24];
	uint64_t avail, total;

	if (!m->space_check || ds_space(&m->g->store->ds[m->dst], &avail, &total) || !total ||
	    avail >= still)
		return 0;
	snprintf(why, sizeof(why), "no room left on datastore %s: %s free, %s still to write",
		 m->g->store->ds[m->dst].name, human(avail, a), human(still, s));
	return mig_fail(m, -ENOSPC, "%s", why);
}

uint64_t mig_space_diff(struct mig *m)
{
	struct stat st;

	return m->diff_fd >= 0 && fstat(m->diff_fd, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}
