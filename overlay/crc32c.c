/* crc32c.c - CRC-32C (Castagnoli), the checksum of every metadata structure.
 *
 * CRC-32C rather than CRC-32 because it detects more error patterns in the block
 * sizes we checksum (4 KiB to 64 KiB) and is what storage formats commonly use, so a
 * second reader finds it in any library.  Metadata is small and only checksummed on
 * commit and open, so a byte-wise table is plenty; the table is built once, lazily
 * and thread-safely.
 *
 * Convention: ov_crc32c(0, buf, len) gives the standard CRC-32C (init and final xor
 * 0xffffffff), and chaining ov_crc32c(ov_crc32c(0, a, n), b, m) equals one call over
 * a followed by b.
 */
#include <pthread.h>

#include "internal.h"

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		table[i] = c;
	}
}

uint32_t ov_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	pthread_once(&table_once, table_init);
	crc = ~crc;
	while (len--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}
