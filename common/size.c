/* size.c - see size.h for the grammar.
 *
 * Written on plain digits rather than strtod/strtoull: those accept signs, spaces,
 * hex, exponents and "inf", and strtod rounds. Here every step is exact in uint64_t:
 * the whole part is checked for overflow digit by digit, and the fraction f (d
 * decimals, trailing zeros dropped) times 2^shift is whole exactly when d <= shift
 * and 5^d divides f, since 10^d = 2^d * 5^d and f then ends in no 0. Its value is
 * (f / 5^d) << (shift - d), below 2^shift, so adding it to whole << shift (a
 * multiple of 2^shift) cannot overflow either.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "errmsg.h"
#include "size.h"

#define MAX_DECIMALS	19	/* 10^19 - 1 still fits in uint64_t */

static bool digit(char c)
{
	return c >= '0' && c <= '9';
}

static int unit_shift(char c)
{
	switch (c) {
	case 'k': case 'K': return 10;
	case 'm': case 'M': return 20;
	case 'g': case 'G': return 30;
	case 't': case 'T': return 40;
	}
	return -1;
}

/* The unit after the number: its shift, or -1 if the text is not a unit. */
static int parse_unit(const char *p)
{
	int shift = unit_shift(*p);

	if (shift < 0)
		shift = 0;
	else if (*++p == 'i' || *p == 'I')
		p++;
	if (*p == 'b' || *p == 'B')
		p++;
	return *p ? -1 : shift;
}

int vds_size_parse(const char *what, const char *s, uint64_t max, uint64_t *out,
		   char *err, size_t len)
{
	const char *p = s, *dot = NULL, *fend;
	uint64_t whole = 0, frac = 0, pow5 = 1, v;
	unsigned d;
	int shift;

	for (; digit(*p); p++) {
		if (whole > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			goto too_big;
		whole = whole * 10 + (uint64_t)(*p - '0');
	}
	if (p != s && *p == '.' && digit(p[1]))
		for (dot = p++; digit(*p); p++)
			;
	shift = p == s ? -1 : parse_unit(p);
	if (shift < 0)
		return vds_err(err, len, -EINVAL, "%s '%s': expected bytes as " VDS_SIZE_SYNTAX, what, s);
	for (fend = p; dot && fend[-1] == '0'; fend--)
		;
	d = dot ? (unsigned)(fend - dot - 1) : 0;
	if (d > MAX_DECIMALS)
		return vds_err(err, len, -EINVAL, "%s '%s': more than %d decimals", what, s, MAX_DECIMALS);
	for (unsigned i = 0; i < d; i++) {
		frac = frac * 10 + (uint64_t)(dot[1 + i] - '0');
		pow5 *= 5;
	}
	if (d > (unsigned)shift || frac % pow5)
		return vds_err(err, len, -EINVAL, "%s '%s' is not a whole number of bytes", what, s);
	if (whole > UINT64_MAX >> shift)
		goto too_big;
	v = (whole << shift) + ((frac / pow5) << (shift - (int)d));
	if (v > max)
		goto too_big;
	*out = v;
	return 0;
too_big:
	return vds_err(err, len, -ERANGE, "%s '%s' is too large (at most %" PRIu64 " bytes)", what, s, max);
}
