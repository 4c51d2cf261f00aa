/* size.h - sizes and rates as users type them, one grammar for every vdsfs program:
 *
 *   SIZE := DIGITS [ "." DIGITS ] [ UNIT ]
 *   UNIT := ( K | M | G | T ) [ i ] [ B ]  |  B          (any case)
 *
 * K, M, G and T are always powers of 1024 (4K = 4KB = 4KiB = 4096): every size here
 * is about disks and memory, and one letter with two meanings would be a trap.
 */
#ifndef VDS_SIZE_H
#define VDS_SIZE_H

#include <stddef.h>
#include <stdint.h>

/* The grammar in words, for --help texts and error messages. */
#define VDS_SIZE_SYNTAX "a number, optionally K, M, G or T (powers of 1024; i, B " \
			"optional), e.g. 64K, 1.5GiB"

/* Parse s, the value of the argument named what (e.g. "--bwlimit"), into *out.
 *
 * A fraction is accepted when the result is a whole number of bytes (1.5G, 0.5K),
 * refused when it is not (0.1K): a rounded byte count would be a silent change. No
 * sign, spaces, hex or exponent. Returns 0; -EINVAL for anything outside the
 * grammar or not a whole number of bytes; -ERANGE for a value above max (pass
 * UINT64_MAX for no bound of the caller's own). On error *out is untouched and err
 * holds one line that names what and s. */
int vds_size_parse(const char *what, const char *s, uint64_t max, uint64_t *out,
		   char *err, size_t errlen);

#endif
