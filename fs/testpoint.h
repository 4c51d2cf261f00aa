/* testpoint.h - TEST-ONLY hooks at the named steps of a migration.
 *
 *   VDSFS_TEST_CRASH=<point>   the daemon kills itself (SIGKILL: no cleanup, no
 *                              flush) when a migration reaches <point>
 *   VDSFS_TEST_HOLD=<point>    the migration waits at <point> until a control
 *                              request {"cmd":"test-release"} arrives; status shows
 *                              "held_at"
 * Points: overlay-on, mid-copy, copied, mid-converge, converged, before-flip,
 * after-flip, cleanup, mid-cancel. Unset (the default) they cost one branch.
 */
#ifndef VDS_TESTPOINT_H
#define VDS_TESTPOINT_H

struct mig;

void testpoint(struct mig *m, const char *point);
void testpoint_release(void);
void testpoint_wake(void);

#endif
