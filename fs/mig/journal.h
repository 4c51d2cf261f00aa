/* journal.h - the on-disk record of one migration, in the source's .vdsfs/.
 *
 * One small JSON file per migration ("mig-<id>.json"), replaced atomically (write a
 * temporary, fdatasync, rename, fsync the directory) at each step that changes what
 * a crash recovery must do. Its phase is the whole decision:
 *   preparing            the differencing file may be half-made and holds nothing:
 *                        delete it
 *   copying, converging, cancelling
 *                        the source is authoritative: merge the differencing file
 *                        back into the base, drop the copy (roll back)
 *   switching            the copy is complete and durable: finish the flip (rename
 *                        the copy into place if not yet done), drop the source if it
 *                        is still the migrated inode ("src_ino")
 */
#ifndef VDS_JOURNAL_H
#define VDS_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

struct vds;
struct mig;

struct journal_rec {
	uint64_t id;
	char path[4096];
	char src[33], dst[33];
	char phase[16];
	uint64_t src_ino;	/* the migrated inode on the source; 0: not recorded */
};

int journal_write(struct vds *v, struct mig *m, const char *phase);
int journal_stage(struct vds *v, struct mig *m, const char *phase);
int journal_commit(struct vds *v, struct mig *m, bool *current);
int journal_remove(struct vds *v, struct mig *m);
int journal_parse(const char *text, struct journal_rec *r);

#endif
