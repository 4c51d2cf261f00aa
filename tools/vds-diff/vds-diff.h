/* vds-diff.h - shared bits of the vds-diff subcommands.
 *
 * Each subcommand lives in its own file and gets argc/argv starting at its name.
 * Exit status: 0 success, 1 failure (including corruption found by check),
 * 2 usage error.  Every failure prints one line to stderr.
 */
#ifndef VDS_DIFF_H
#define VDS_DIFF_H

#include <stdbool.h>
#include <stdint.h>

int cmd_create(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_merge(int argc, char **argv);

/* util.c */
void die_usage(const char *usage);		/* prints usage, exits 2 */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));	/* returns 1 */
int open_or_fail(const char *path, int flags, int *fd);
const char *ov_strerror(int neg_errno);	/* overlay errors in words */

#endif
