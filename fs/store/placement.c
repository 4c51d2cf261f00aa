/* placement.c - create=mfs|ff|NAME.
 *
 * mfs picks the datastore with the most free bytes (ties go to the one listed first,
 * so placement is deterministic); ff the first usable one; a named policy always its
 * datastore, even when it is full, because a user who pins placement wants ENOSPC
 * rather than a file silently landing elsewhere.
 */
#include <errno.h>

#include "placement.h"

int placement_pick(enum vds_create_policy policy, int named, const uint64_t *avail,
		   const bool *usable, int n)
{
	int best = -1;

	if (policy == VDS_CREATE_NAMED)
		return (named >= 0 && named < n && usable[named]) ? named : -ENOSPC;
	for (int i = 0; i < n; i++) {
		if (!usable[i])
			continue;
		if (policy == VDS_CREATE_FF)
			return i;
		if (best < 0 || avail[i] > avail[best])
			best = i;
	}
	return best >= 0 ? best : -ENOSPC;
}
