/* check.c - offline verification for `vds-diff check`.
 *
 * Stricter than open: open accepts a file whose older header slot is damaged
 * (that is what a crash during a commit leaves, and the next commit repairs it),
 * check reports it, because from the file alone a torn commit and a corrupted
 * header cannot be told apart.  Everything the committed header references is
 * verified (load.c, load_v1.c): for version 2 every record block of the chain,
 * its checksum, place, sequence and generation, every entry, every slot referenced
 * once and below the log end, the counters and the file length; for version 1 the
 * map pages as before.  Data blocks carry no checksum (the overlay is a disk: its
 * contents are the guest's business).
 */
#include <stdlib.h>

#include "internal.h"

int overlay_check(int diff_fd, overlay_report_fn report, void *arg)
{
	int problems = 0;
	struct ov_finder f = { report, arg, &problems };
	struct overlay *ov = NULL;
	struct ov_meta m;
	bool other_bad;
	int ret = ov_load_header(diff_fd, ov_fd_direct(diff_fd), &m, &other_bad, &f);

	if (!ret)
		ret = ov_load_handle(-1, diff_fd, &m, &f, &ov);
	overlay_close(ov);
	if (ret == -EBADMSG || ret == -ENOTSUP || ret == -EFBIG)
		return problems ? problems : 1;
	if (ret)
		return ret;
	return problems;
}
