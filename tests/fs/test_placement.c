/* Unit tests for fs/store/placement.c. */
#include <criterion/criterion.h>
#include <errno.h>

#include "placement.h"

Test(placement, mfs_most_free_ties_to_first)
{
	uint64_t avail[] = { 10, 30, 30, 5 };
	bool usable[] = { true, true, true, true };

	cr_assert_eq(placement_pick(VDS_CREATE_MFS, -1, avail, usable, 4), 1);
	usable[1] = false;
	cr_assert_eq(placement_pick(VDS_CREATE_MFS, -1, avail, usable, 4), 2);
}

Test(placement, ff_first_usable)
{
	uint64_t avail[] = { 0, 0 };
	bool usable[] = { false, true };

	cr_assert_eq(placement_pick(VDS_CREATE_FF, -1, avail, usable, 2), 1);
}

Test(placement, named_even_when_fuller)
{
	uint64_t avail[] = { 1000, 1 };
	bool usable[] = { true, true };

	cr_assert_eq(placement_pick(VDS_CREATE_NAMED, 1, avail, usable, 2), 1);
}

Test(placement, nothing_usable)
{
	uint64_t avail[] = { 1 };
	bool usable[] = { false };

	cr_assert_eq(placement_pick(VDS_CREATE_MFS, -1, avail, usable, 1), -ENOSPC);
	cr_assert_eq(placement_pick(VDS_CREATE_NAMED, 0, avail, usable, 1), -ENOSPC);
}
