/* store.h - the datastores of one mount, as every layer above reaches them.
 *
 * A store is the set of open datastores (datastore.h), the rule that places new
 * objects on them (placement.h) and whether the daemon may give objects their
 * owners (it runs as root). main() fills it before the mount; while mounted,
 * datastores can be added (store_add), retired (store_remove) and put in
 * maintenance (store_set_maint). Nothing here knows of names across datastores
 * (ns/), migrations (mig/) or FUSE (fuse/).
 *
 * The datastore list, its rule (the lock is LK_NS, the namespace's: fs/lock/lock.h):
 *  1. A slot, once published, is never reused nor moved: datastore index i means
 *     the same datastore for the whole mount, so node ids, migration records and
 *     the names they point to (ds[i].name) stay valid. A mount has VDS_MAX_DS
 *     slots; removed datastores keep theirs until the next mount.
 *  2. store_add fills ds[nds] whole, then publishes it by storing nds + 1: a
 *     reader that loads nds sees every slot below it complete.
 *  3. store_add, store_remove and store_set_maint are called with the namespace
 *     lock held exclusive (ns/ns.h), so code that holds it shared sees one list
 *     from "resolve a name" to "act on it". Readers without it (statfs, a running
 *     migration on its own two datastores) see a consistent list, possibly a
 *     change late.
 *  4. A removed datastore is marked gone and skipped by every loop
 *     (store_live); its lock is released at once (another vdsfs may take it), but
 *     its directory fds stay open until store_close, so a thread that read the
 *     list just before can never use a recycled fd number.
 */
#ifndef VDS_STORE_H
#define VDS_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "datastore.h"
#include "dsspec.h"		/* VDS_MAX_DS */
#include "iostat.h"
#include "placement.h"

struct store {
	struct datastore ds[VDS_MAX_DS];
	_Atomic int nds;	/* slots published (rule 2), removed ones included */
	atomic_bool gone[VDS_MAX_DS];	/* removed (rule 4) */
	atomic_bool maint[VDS_MAX_DS];	/* maintenance: no new object or migration lands */
	enum vds_create_policy create;
	int create_named;	/* index for create=NAME, else -1 */
	bool root;		/* running as root: new objects get their creator as owner */
	struct ds_iostat io[VDS_MAX_DS];	/* lock-free counters (iostat.h) */
	const char *mountpoint;	/* canonical; runtime adds are checked against it */
};

/* Datastore i is part of the union (not removed). */
static inline bool store_live(const struct store *s, int i)
{
	return !atomic_load(&s->gone[i]);
}

/* New objects and migrations may land on datastore i. */
static inline bool store_open_for_new(const struct store *s, int i)
{
	return store_live(s, i) && !atomic_load(&s->maint[i]);
}

/* Datastore i as a bit of a set (uint64_t: VDS_MAX_DS is 64). */
#define VDS_DS_BIT(i)	(1ull << (i))

/* Index of the live datastore called name, or -1. */
int store_by_name(const struct store *s, const char *name);

/* The datastore a new file or directory goes to, by the create= policy, among
 * those open for new objects (not in maintenance): an index, or -ENOSPC when none
 * can take it. */
int store_pick(const struct store *s);

/* Open datastore name at canon and add it at the end of the list, checked exactly
 * as the mount checks its own: canon comes from ds_canonicalize, then
 * ds_check_layout against every live datastore and the mountpoint, and ds_open's
 * state folder and lock. Caller holds the namespace lock exclusive (rule 3), and
 * canonicalized before taking it (a path inside the mount is looked up through
 * the mount, whose lookups take that lock shared); the name was checked by
 * vds_ds_parse. The index, or -errno with one line in err (-ENOSPC: no slot
 * left, VDS_MAX_DS). */
int store_add(struct store *s, const char *name, const char *canon, char *err, size_t len);

/* Retire datastore i: gone from the union and from placement, its lock released.
 * The caller checked that it holds nothing and holds the namespace lock exclusive. */
void store_remove(struct store *s, int i);

/* Maintenance on or off for datastore i (rule 3: namespace lock exclusive). */
static inline void store_set_maint(struct store *s, int i, bool on)
{
	atomic_store(&s->maint[i], on);
}

/* Regular files, other non-directories and directories on datastore d, its
 * .vdsfs/ excluded; stops counting at limit objects in all (0: no limit). */
struct store_count {
	uint64_t files, others, dirs;
	uint64_t held;		/* bytes allocated to the regular files */
};
void store_count(const struct datastore *d, uint64_t limit, struct store_count *c);

/* Bytes allocated to regular files on datastore d, its .vdsfs/ excluded. Walks the
 * whole tree (no depth limit: the walk holds one fd per level it is in). */
uint64_t store_held_bytes(const struct datastore *d);
/* The same walk, also counting the regular files (*files; a hard link counts once
 * per name). */
uint64_t store_usage(const struct datastore *d, uint64_t *files);

/* Close every datastore (their locks go with them). */
void store_close(struct store *s);

#endif
