/* Unit tests for fs/mig/plan.c: the evacuation and rebalance criteria. */
#include <criterion/criterion.h>
#include <errno.h>

#include "plan.h"

#define G (1ull << 30)

static struct plan_ds ds(uint64_t size_g, uint64_t avail_g, bool ok)
{
	return (struct plan_ds){ size_g * G, avail_g * G, ok };
}

static struct plan_item item(uint64_t g, int src)
{
	return (struct plan_item){ g * G, src, -1 };
}

Test(plan_evacuate, largest_first_onto_most_free_and_spread)
{
	struct plan_ds d[] = { ds(100, 10, false), ds(100, 50, true), ds(100, 60, true) };
	struct plan_item it[] = { item(5, 0), item(20, 0), item(10, 0), item(20, 0) };
	uint64_t short_by;

	cr_assert_eq(plan_evacuate(d, 3, 0, it, 4, 0.9, &short_by), 0);
	cr_assert_eq(short_by, 0);
	/* 20 -> DS2 (60 free); 20 -> DS1 (50 vs 40); 10 -> DS1 (30 vs 40: DS2);
	 * ... checked step by step: */
	cr_assert_eq(it[1].dst, 2);	/* first 20: DS2 has 60 free */
	cr_assert_eq(it[3].dst, 1);	/* second 20: DS1 50 > DS2 40 */
	cr_assert_eq(it[2].dst, 2);	/* 10: DS2 40 > DS1 30 */
	cr_assert_eq(it[0].dst, 1);	/* 5: DS1 30 = DS2 30, tie to the lower index */
}

Test(plan_evacuate, never_past_max_fill_and_never_onto_source)
{
	/* DS1: 100 G, 20 free, 80 used: at 90% it takes 10 G more, no more. */
	struct plan_ds d[] = { ds(100, 90, true), ds(100, 20, true) };
	struct plan_item it[] = { item(10, 0) };
	struct plan_item big[] = { item(11, 0) };
	uint64_t short_by;

	cr_assert_eq(plan_evacuate(d, 2, 0, it, 1, 0.9, &short_by), 0);
	cr_assert_eq(it[0].dst, 1);
	cr_assert_eq(plan_evacuate(d, 2, 0, big, 1, 0.9, &short_by), -ENOSPC);
	cr_assert_eq(big[0].dst, -1);
	cr_assert_eq(short_by, 11 * G);
	/* A higher limit lets it in. */
	cr_assert_eq(plan_evacuate(d, 2, 0, big, 1, 0.95, &short_by), 0);
}

Test(plan_evacuate, shortfall_names_only_what_does_not_fit)
{
	struct plan_ds d[] = { ds(100, 0, true), ds(100, 30, true), ds(100, 100, false) };
	struct plan_item it[] = { item(15, 0), item(15, 0), item(15, 0) };
	uint64_t short_by;

	cr_assert_eq(plan_evacuate(d, 3, 0, it, 3, 0.9, &short_by), -ENOSPC);
	cr_assert_eq(short_by, 30 * G);	/* 20 G room at 90%: one 15 G file of three */
	cr_assert_eq(it[0].dst, 1);
	cr_assert_eq(it[1].dst, -1);
	cr_assert_eq(it[2].dst, -1);
}

Test(plan_evacuate, bad_arguments)
{
	struct plan_ds d[] = { ds(1, 1, true) };
	uint64_t s;

	cr_assert_eq(plan_evacuate(d, 1, 1, NULL, 0, 0.9, &s), -EINVAL);
	cr_assert_eq(plan_evacuate(d, 1, 0, NULL, 0, 0, &s), -EINVAL);
	cr_assert_eq(plan_evacuate(d, 1, 0, NULL, 0, 1.5, &s), -EINVAL);
	cr_assert_eq(plan_evacuate(d, 1, 0, NULL, 0, 1, &s), 0);
}

Test(plan_rebalance, one_file_that_brings_it_under_fewest_bytes)
{
	/* DS0 at 95%: 15 G over 80%. Candidates 40, 20, 16, 3: 16 alone is enough. */
	struct plan_ds d[] = { ds(100, 5, true), ds(100, 90, true) };
	struct plan_item it[] = { item(40, 0), item(20, 0), item(16, 0), item(3, 0) };
	int over;

	cr_assert_eq(plan_rebalance(d, 2, it, 4, 0.8, &over), 1);
	cr_assert_eq(over, 0);
	cr_assert_eq(it[2].dst, 1);
	cr_assert_eq(it[0].dst, -1);
	cr_assert_eq(it[1].dst, -1);
	cr_assert_eq(it[3].dst, -1);
}

Test(plan_rebalance, largest_first_when_none_alone_is_enough)
{
	/* 15 G over; files of 10, 6, 2: 10 first, then 6 (5 G over, 6 brings it under). */
	struct plan_ds d[] = { ds(100, 5, true), ds(100, 90, true) };
	struct plan_item it[] = { item(2, 0), item(10, 0), item(6, 0) };
	int over;

	cr_assert_eq(plan_rebalance(d, 2, it, 3, 0.8, &over), 2);
	cr_assert_eq(over, 0);
	cr_assert_eq(it[1].dst, 1);
	cr_assert_eq(it[2].dst, 1);
	cr_assert_eq(it[0].dst, -1);
}

Test(plan_rebalance, never_pushes_another_over)
{
	/* The only other datastore is at 75%: 5 G of room under 80%. */
	struct plan_ds d[] = { ds(100, 5, true), ds(100, 25, true) };
	struct plan_item it[] = { item(6, 0), item(4, 0) };
	int over;

	/* 4 G fits but leaves it at 91%: no half measure, nothing moves. */
	cr_assert_eq(plan_rebalance(d, 2, it, 2, 0.8, &over), 0);
	cr_assert_eq(it[1].dst, -1);
	cr_assert_eq(it[0].dst, -1);
	cr_assert_eq(over, 1);	/* reported, not forced */
}

Test(plan_rebalance, spreads_over_several_destinations)
{
	/* 95% to under 80%: 16 G must go; DS1 and DS2 have 10 G of room each. */
	struct plan_ds d[] = { ds(100, 5, true), ds(100, 30, true), ds(100, 30, true) };
	struct plan_item it[] = { item(8, 0), item(8, 0), item(8, 0) };
	int over;

	cr_assert_eq(plan_rebalance(d, 3, it, 3, 0.8, &over), 2);
	cr_assert_eq(over, 0);
	cr_assert_neq(it[0].dst, it[1].dst);	/* one on each */
	cr_assert_eq(it[2].dst, -1);
}

Test(plan_rebalance, nothing_over_nothing_moves)
{
	struct plan_ds d[] = { ds(100, 50, true), ds(100, 40, true) };
	struct plan_item it[] = { item(10, 0), item(10, 1) };
	int over;

	cr_assert_eq(plan_rebalance(d, 2, it, 2, 0.8, &over), 0);
	cr_assert_eq(over, 0);
	cr_assert_eq(it[0].dst, -1);
	cr_assert_eq(it[1].dst, -1);
}

Test(plan_rebalance, maintenance_receives_nothing)
{
	struct plan_ds d[] = { ds(100, 5, true), ds(100, 100, false) };
	struct plan_item it[] = { item(10, 0) };
	int over;

	cr_assert_eq(plan_rebalance(d, 2, it, 1, 0.8, &over), 0);
	cr_assert_eq(it[0].dst, -1);
	cr_assert_eq(over, 1);
}
