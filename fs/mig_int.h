/* mig_int.h - what the migration's own files (mig.c, mig_switch.c, mig_ctl.c) share;
 * nothing else includes it. Locks as in mig.h. */
#ifndef VDS_MIG_INT_H
#define VDS_MIG_INT_H

#include <stdbool.h>
#include <stdint.h>
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

/* mig.c, for the registry */
void mig_thread_start(struct mig *m);
int journal_rewrite_locked(struct vds *v, struct mig *m);

#endif
