/* mig_int.h - what the migration's own files (mig.c, mig_switch.c, mig_ctl.c) share;
 * nothing else includes it. Locks as in mig.h. */
#ifndef VDS_MIG_INT_H
#define VDS_MIG_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "mig.h"

uint64_t mig_now_ns(clockid_t c);
void mig_set_phase(struct mig *m, enum mig_phase p);
/* m->path as it is now (a rename may change it; v->mig_lock taken here). */
void mig_copy_path(struct mig *m, char *out, size_t len);
/* Write the journal record for phase, durably, and remember it as m->journal_phase. */
int mig_journal(struct mig *m, const char *phase);
/* Record the first failure: m->err = err, m->msg = fmt with detail (or strerror). */
int mig_fail(struct mig *m, int err, const char *fmt, const char *detail);

/* mig_switch.c: 0 once the file lives on the destination, *settled telling whether
 * the switch is durable and the source gone (else the journal must stay for the next
 * mount); else -errno (-ECANCELED: cancelled) with the source still authoritative,
 * or, with m->stuck set, the journal committed and the overlay mirroring into the
 * copy until the next mount finishes the switch. */
int mig_switch(struct mig *m, bool *settled);
void mig_switch_wake(struct vds *v);
/* mig_ctl.c: m's source could not be removed after the switch (stale: hidden from
 * lookups by mig_hides), or now has been. With v->mig_lock held. */
void mig_set_stale_locked(struct mig *m, bool stale);

/* mig_space.c: what a destination needs (the rule is at the top of that file). */
struct mig_space {
	uint64_t allocated, diff, rate;	/* summed over the files */
	uint64_t growth, pending, margin, need;	/* set by mig_space_verdict */
	unsigned files, npending;
	double secs;
};
/* Count one more file (its stat, as found on its datastore). */
void mig_space_add(struct vds *v, struct mig_space *sp, const struct stat *st);
/* 0 if datastore dst has room for sp (or o says not to check), else -ENOSPC with
 * every term in err; what names the files ("vm/disk", "the 5 files of ..."). */
int mig_space_verdict(struct vds *v, int dst, struct mig_space *sp, const struct mig_opts *o,
		      const char *what, char *err, size_t len);
/* While m runs: 0 if its destination still has room for still bytes, else the
 * migration has failed with -ENOSPC and a line naming the datastore. */
int mig_space_left(struct mig *m, uint64_t still);
/* Bytes the differencing file holds (allocated), 0 if none. */
uint64_t mig_space_diff(struct mig *m);

/* mig.c, for the registry */
void mig_thread_start(struct mig *m);
int journal_rewrite_locked(struct vds *v, struct mig *m);

#endif
