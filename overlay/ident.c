/* ident.c - the identity of a base image, so a differencing file is never applied
 * to the wrong base.
 *
 * Identity = the base's size at create + a caller-supplied uuid string (the daemon's
 * id for the file) + a content fingerprint: CRC-32C of the first and last 64 KiB.
 * st_dev/st_ino are deliberately not part of it: the same base reached over another
 * NFS mount, or restored from backup, must still match, and a copy made by the
 * migration must be usable as a merge target.  The fingerprint costs two small reads
 * and catches the common mistakes (wrong file, a different image of the same size)
 * even when the caller passes no uuid.  It is only valid while the base is frozen,
 * which is the overlay's premise; a merge onto the base sets BASE_DIRTY first, and
 * from then on only the uuid is checked.
 */
#include <stdlib.h>

#include "internal.h"

#define FP_SPAN (64u << 10)

int ov_base_fingerprint(int base_fd, bool direct, uint64_t size, uint32_t *fp)
{
	uint64_t span = size < FP_SPAN ? size : FP_SPAN;
	uint8_t *buf = ov_alloc(FP_SPAN + OV_ALIGN);
	uint8_t le[8];
	int ret;

	if (!buf)
		return -ENOMEM;
	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)(size >> (8 * i));
	*fp = ov_crc32c(0, le, 8);
	/* Read whole aligned spans so O_DIRECT bases work; bytes past EOF read zero. */
	ret = ov_pread(base_fd, direct, buf, FP_SPAN, 0);
	if (!ret) {
		*fp = ov_crc32c(*fp, buf, span);
		uint64_t tail = (size - span) / OV_ALIGN * OV_ALIGN;

		ret = ov_pread(base_fd, direct, buf, FP_SPAN + OV_ALIGN, tail);
		if (!ret)
			*fp = ov_crc32c(*fp, buf + (size - span - tail), span);
	}
	free(buf);
	return ret;
}
