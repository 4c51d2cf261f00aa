/* placement.h - which datastore receives a new file or directory. Pure logic. */
#ifndef VDS_PLACEMENT_H
#define VDS_PLACEMENT_H

#include <stdbool.h>
#include <stdint.h>

/* Where new files and directories go: the create= mount option. */
enum vds_create_policy {
	VDS_CREATE_MFS,		/* most free space (default) */
	VDS_CREATE_FF,		/* first datastore listed */
	VDS_CREATE_NAMED,	/* the datastore named in create=NAME */
};

/* avail[i]: free bytes of datastore i, or UINT64_MAX if unknown. usable[i] false
 * removes a datastore from consideration (statfs failed, ...). Returns an index, or
 * -ENOSPC when no datastore can take it. */
int placement_pick(enum vds_create_policy policy, int named, const uint64_t *avail,
		   const bool *usable, int n);

#endif
