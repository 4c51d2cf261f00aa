/* lock.c - the per-thread rank counts behind lock.h's assertions. */
#ifndef NDEBUG
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include "lock.h"

static __thread unsigned short held[LK_NRANKS];

static const char *const rank_name[LK_NRANKS] = {
	[LK_GATE] = "gate", [LK_NS] = "ns", [LK_JOURNAL] = "journal", [LK_MIGS] = "migs",
	[LK_REGION] = "region", [LK_HANDLES] = "handles", [LK_NODES] = "nodes",
	[LK_LEAF] = "leaf",
};

/* An order violation is a bug that can deadlock the daemon: say which, and stop. */
static void violation(enum lk_rank want, int have)
{
	fprintf(stderr, "vdsfs: lock order violated: taking %s while holding %s (fs/lock/lock.h)\n",
		rank_name[want], rank_name[have]);
	abort();
}

void lk_acquire(enum lk_rank r)
{
	bool several = r == LK_REGION || r == LK_LEAF;

	assert(r > 0 && r < LK_NRANKS);
	for (int i = r + several; i < LK_NRANKS; i++)
		if (held[i])
			violation(r, i);
	held[r]++;
}

void lk_release(enum lk_rank r)
{
	assert(held[r] > 0);
	held[r]--;
}

bool lk_held(enum lk_rank r)
{
	return held[r] > 0;
}
#else
typedef int lk_empty_unit;	/* ISO C: a translation unit is never empty */
#endif
