/* journal.h - the on-disk record of one migration, in the source's .vdsfs/.
 *
 * One small JSON file per migration ("mig-<id>.json"), replaced atomically (write a
 * temporary, fdatasync, rename, fsync the directory) at each step that changes what
 * a crash recovery must do. Its phase (proto.h's names) is the whole decision:
 *   preparing            the differencing file may be half-made and holds nothing:
 *                        delete it
 *   copying, converging, cancelling
 *                        the source is authoritative: merge the differencing file
 *                        back into the base, drop the copy (roll back)
 *   switching            the copy is complete and durable: finish the flip (rename
 *                        the copy into place if not yet done), drop the source if it
 *                        is still the migrated inode ("src_ino")
 * recover.c acts on it; MIGRATION.md has the table with the reasons.
 *
 * Every write is made with the migration's m->jlock held (LK_JOURNAL): one writer
 * per journal file, and the record it writes names the path of the moment.
 */
#ifndef VDS_JOURNAL_H
#define VDS_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "proto.h"

struct mig;

struct journal_rec {
	uint64_t id;
	char path[4096];
	char src[33], dst[33];
	enum mig_phase phase;
	uint64_t src_ino;	/* the migrated inode on the source; 0: not recorded */
};

/* Write the record for phase durably beside the journal ("<name>.json.next"),
 * without making it current; *gen gets the path_gen of the path it names. */
int journal_stage(struct mig *m, enum mig_phase phase, unsigned *gen);
/* Make the staged record current: one rename and one directory fsync. *current
 * (if not NULL) says whether the rename happened: if only the fsync failed, the new
 * record is the one a reader sees now, durable or not. */
int journal_commit(struct mig *m, bool *current);
/* Stage and commit; on success m->journal_phase and m->journal_gen say so. */
int journal_write(struct mig *m, enum mig_phase phase);
/* Remove the journal (and a staged record), durably. */
int journal_remove(struct mig *m);
/* The record's format: "version" in every record since the first. */
#define JOURNAL_VERSION	1
/* Parse a record: 0; -EPROTONOSUPPORT for a record of another version (a newer
 * vdsfs wrote it: what its phases mean is not ours to guess); -EBADMSG for anything
 * else that is not a complete record. */
int journal_parse(const char *text, struct journal_rec *r);

#endif
