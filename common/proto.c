/* proto.c - see proto.h. */
#include <string.h>

#include "proto.h"

static const char *const phase_names[MIG_NPHASES] = {
	[MIG_QUEUED] = "queued", [MIG_PREPARING] = "preparing", [MIG_COPYING] = "copying",
	[MIG_CONVERGING] = "converging", [MIG_SWITCHING] = "switching",
	[MIG_CANCELLING] = "cancelling", [MIG_DONE] = "done", [MIG_FAILED] = "failed",
	[MIG_CANCELLED] = "cancelled",
};

const char *mig_phase_name(enum mig_phase p)
{
	return (unsigned)p < MIG_NPHASES ? phase_names[p] : "?";
}

int mig_phase_parse(const char *name)
{
	for (int p = 0; p < MIG_NPHASES; p++)
		if (!strcmp(name, phase_names[p]))
			return p;
	return -1;
}
