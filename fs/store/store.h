/* store.h - the datastores of one mount, as every layer above reaches them.
 *
 * A store is the set of open datastores (datastore.h), the rule that places new
 * objects on them (placement.h) and whether the daemon may give objects their
 * owners (it runs as root). main() fills it before the mount; afterwards it is
 * read-only, so it has no lock. Nothing here knows of names across datastores
 * (ns/), migrations (mig/) or FUSE (fuse/).
 */
#ifndef VDS_STORE_H
#define VDS_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "datastore.h"
#include "dsspec.h"		/* VDS_MAX_DS */
#include "iostat.h"
#include "placement.h"

struct store {
	struct datastore ds[VDS_MAX_DS];
	int nds;
	enum vds_create_policy create;
	int create_named;	/* index for create=NAME, else -1 */
	bool root;		/* running as root: new objects get their creator as owner */
	struct ds_iostat io[VDS_MAX_DS];	/* lock-free counters (iostat.h) */
};

/* Datastore i as a bit of a set (uint64_t: VDS_MAX_DS is 64). */
#define VDS_DS_BIT(i)	(1ull << (i))

/* Index of the datastore called name, or -1. */
int store_by_name(const struct store *s, const char *name);

/* The datastore a new file or directory goes to, by the create= policy: an index,
 * or -ENOSPC when none can take it. */
int store_pick(const struct store *s);

/* Bytes allocated to regular files on datastore d, its .vdsfs/ excluded. Walks the
 * whole tree (no depth limit: the walk holds one fd per level it is in). */
uint64_t store_held_bytes(const struct datastore *d);
/* The same walk, also counting the regular files (*files; a hard link counts once
 * per name). */
uint64_t store_usage(const struct datastore *d, uint64_t *files);

/* Close every datastore (their locks go with them). */
void store_close(struct store *s);

#endif
