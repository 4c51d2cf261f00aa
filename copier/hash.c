/* hash.c -- block hash for verification.
 *
 * The file checksum (verify.c) is the sum of block_hash() over every block
 * that is not all zeros, so holes and written zeros contribute nothing and
 * neither file's holes have to be read. Mixing the offset into each block's
 * hash makes the sum order-independent yet position-sensitive. The mixer is
 * a plain multiply/xor-shift over 64-bit words: not cryptographic, it only
 * has to catch corruption and misplaced data.
 */
#include <string.h>

#include "internal.h"

static inline uint64_t mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

uint64_t block_hash(const void *buf, size_t len, uint64_t off)
{
	const unsigned char *p = buf;
	uint64_t h = mix64(off ^ 0x9e3779b97f4a7c15ull), w;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	for (; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return mix64(h ^ len);
}
