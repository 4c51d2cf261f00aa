/* testpoint.h - TEST-ONLY hooks at the named steps of a migration.
 *
 *   VDSFS_TEST_CRASH=<point>   the daemon kills itself (SIGKILL: no cleanup, no
 *                              flush) when a migration reaches <point>
 *   VDSFS_TEST_HOLD=<point>    the migration waits at <point> until a control
 *                              request {"cmd":"test-release"} arrives; status shows
 *                              "held_at"
 *   VDSFS_TEST_FAIL=<step>[,<step>...]
 *                              each named step of the switch fails with EIO, once
 *                              (the first time any migration reaches it); steps:
 *                              commit (the journal's commit), flip-rename (the copy
 *                              into place), journal-revert (putting the journal back
 *                              after a failed flip), flip-unlink (the source),
 *                              flip-sync (the folders' fsync after the flip)
 * Points: overlay-on, mid-copy, copied, mid-converge, converged, switching (phase
 * "switching", just before the pause: I/O and names go on, but unlink and rename no
 * longer cancel the migration), before-flip (the journal says "switching"; in the
 * pause, after the commit and before the namespace lock is taken),
 * after-flip, unlink-retry (before each retry of a source that could not be
 * removed), cleanup, mid-cancel. Unset they cost one branch.
 *
 * Compiled only into test builds (meson option test_hooks, on unless the build is
 * a release build): a production daemon has no environment variable that kills it
 * and no control command that steps a migration. Elsewhere these are no-ops.
 */
#ifndef VDS_TESTPOINT_H
#define VDS_TESTPOINT_H

struct mig;

#ifdef VDS_TEST_HOOKS
void testpoint(struct mig *m, const char *point);
/* -EIO when VDSFS_TEST_FAIL names step and it has not failed yet, else 0. */
int testfail(const char *step);
void testpoint_release(void);
void testpoint_wake(void);
#else
static inline void testpoint(struct mig *m, const char *point) { (void)m; (void)point; }
static inline int testfail(const char *step) { (void)step; return 0; }
static inline void testpoint_release(void) {}
static inline void testpoint_wake(void) {}
#endif

#endif
