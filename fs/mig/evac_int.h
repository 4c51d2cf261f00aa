/* evac_int.h - what evacuate.c and evac_move.c share; nothing else includes it. */
#ifndef VDS_EVAC_INT_H
#define VDS_EVAC_INT_H

#include "mig_int.h"

/* A hard-linked group found on the datastore: every name of one inode. */
struct evac_group {
	ino_t ino;
	size_t entry;			/* its evac_entry */
	char **names;
	unsigned n, cap;
};

/* Move the object of entry e (a symlink, fifo, socket or device: one name) from
 * datastore src to dst: recreated there with its owner, mode and times, then
 * removed from src, under the namespace lock exclusive so that nobody sees it on
 * both or on neither. 0 or -errno with e->msg set. */
int evac_move_special(struct migs *g, struct evac_entry *e, int src, int dst);

/* Move a hard-linked group with all its names: the data is copied into dst's
 * .vdsfs/ while the file's gate is held exclusive (no I/O, no open), then every
 * name is linked on dst and unlinked on src under the namespace lock exclusive, and
 * the file's node follows it. Refused (-EBUSY) while the file is open. */
int evac_move_group(struct migs *g, struct evac_entry *e, const struct evac_group *gr,
		    int src, int dst);

/* Remove from src every folder in dirs (deepest first) that is empty there now,
 * after making sure the union keeps it: a copy is made on dst, shaped like src's,
 * when no other datastore has one. How many were removed. */
size_t evac_sweep_dirs(struct migs *g, char **dirs, size_t n, int src, int dst);

int evac_set_msg(struct evac_entry *e, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
