/* Unit tests for common/size.c: every spelling the grammar accepts, each kind of
 * text it refuses (with a message naming the argument), and overflow. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "size.h"

#define K	(1ull << 10)
#define M	(1ull << 20)
#define G	(1ull << 30)
#define T	(1ull << 40)

static char err[256];

static int parse(const char *s, uint64_t max, uint64_t *out)
{
	err[0] = 0;
	return vds_size_parse("--opt", s, max, out, err, sizeof(err));
}

Test(size, accepted)
{
	static const struct {
		const char *s;
		uint64_t v;
	} ok[] = {
		{ "0", 0 }, { "4096", 4096 }, { "007", 7 }, { "4B", 4 }, { "4b", 4 },
		{ "4K", 4 * K }, { "4k", 4 * K }, { "4KB", 4 * K }, { "4kb", 4 * K },
		{ "4KiB", 4 * K }, { "4kib", 4 * K }, { "4Ki", 4 * K }, { "4KIB", 4 * K },
		{ "64M", 64 * M }, { "64MiB", 64 * M }, { "64MB", 64 * M }, { "1g", G },
		{ "2T", 2 * T }, { "2tib", 2 * T },
		{ "1.5G", 3 * G / 2 }, { "0.5K", 512 }, { "1.50K", 1536 }, { "2.0T", 2 * T },
		{ "1.0", 1 }, { "0.25M", M / 4 },
		{ "0.0009765625K", 1 },		/* 1/1024 K: ten decimals, still whole */
		{ "16777215T", 16777215 * T },	/* the largest whole number of T */
		{ "16777215.5T", UINT64_MAX - T / 2 + 1 },
		{ "18446744073709551615", UINT64_MAX },
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint64_t v = 12345;

		cr_assert_eq(parse(ok[i].s, UINT64_MAX, &v), 0, "'%s' refused: %s", ok[i].s, err);
		cr_assert_eq(v, ok[i].v, "'%s' gave %llu", ok[i].s, (unsigned long long)v);
	}
}

/* Refused with -EINVAL, *out untouched, one line that names the option and value. */
Test(size, refused)
{
	static const char *bad[] = {
		"", "K", "B", "iB", "-1", "+1", " 1", "1 ", "1K ", "1 K", "0x10", "1e3", "1.",
		".5", "1..5", "1.5.5", "1,5K", "inf", "nan", "4iB", "4KiBB", "4BB", "4KK", "4P",
		"4E", "4Kx", "4\n",
		"0.1K", "1.5", "0.3M",			/* not a whole number of bytes */
		"1.00000000000000000001T",		/* more decimals than the parser reads */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 12345;

		cr_assert_eq(parse(bad[i], UINT64_MAX, &v), -EINVAL, "'%s' accepted", bad[i]);
		cr_assert_eq(v, 12345, "'%s' changed the output", bad[i]);
		cr_assert(strstr(err, "--opt"), "'%s': '%s' lacks the option", bad[i], err);
		cr_assert(strstr(err, bad[i]), "'%s': '%s' lacks the value", bad[i], err);
		if (!strchr(bad[i], '\n'))
			cr_assert_null(strchr(err, '\n'), "'%s': message is not one line", bad[i]);
	}
}

Test(size, overflow)
{
	static const char *big[] = {
		"18446744073709551616", "99999999999999999999999", "16777216T", "16777216.0T",
		"17179869184G", "18014398509481984K",
	};

	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		uint64_t v = 12345;

		cr_assert_eq(parse(big[i], UINT64_MAX, &v), -ERANGE, "'%s' accepted", big[i]);
		cr_assert_eq(v, 12345);
		cr_assert(strstr(err, "too large") && strstr(err, big[i]) && strstr(err, "--opt"),
			  "'%s': %s", big[i], err);
	}
}

/* The caller's own bound (e.g. INT64_MAX for a JSON integer) is refused the same way. */
Test(size, callers_bound)
{
	uint64_t v = 0;

	cr_assert_eq(parse("8G", 8 * G, &v), 0);
	cr_assert_eq(v, 8 * G);
	cr_assert_eq(parse("8589934593", 8 * G, &v), -ERANGE);
	cr_assert(strstr(err, "at most 8589934592 bytes"), "%s", err);
	cr_assert_eq(parse("8T", INT64_MAX, &v), 0);
	cr_assert_eq(parse("8388608T", INT64_MAX, &v), -ERANGE);	/* 2^63 */
}
