/* check.c - offline verification for `vds-diff check`.
 *
 * Stricter than open: open accepts a file whose older header slot is damaged
 * (that is what a crash during a commit leaves, and the next commit repairs it),
 * check reports it, because from the file alone a torn commit and a corrupted
 * header cannot be told apart.  Everything the committed header references is
 * verified: map page checksums, page numbers and generations, the 2-bit entries,
 * the block counters and the file length.  Data blocks carry no checksum (the
 * overlay is a disk: its contents are the guest's business).
 */
#include <stdlib.h>

#include "internal.h"

int overlay_check(int diff_fd, overlay_report_fn report, void *arg)
{
	struct ov_loaded l;
	int problems = 0;
	int ret = ov_load(diff_fd, ov_fd_direct(diff_fd), &l, report, arg, &problems);

	if (ret == -EBADMSG || ret == -ENOTSUP)
		return problems ? problems : 1;
	if (ret)
		return ret;
	ov_meta_free(&l.meta);
	free(l.words);
	return problems;
}
