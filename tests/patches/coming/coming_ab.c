/* SPDX-License-Identifier: MIT */
/*
 * coming_a / coming_b - both replace libcoming.so's coming_value(x)
 * (2x + 1): coming_a with 1000 + x, coming_b with 2000 + x, so the one on
 * top of the stack shows (tests/e2e/46-coming.sh, 48-coming-race.sh).
 * Built twice from this file with COMING_N 1 and 2.
 */
#include <lpatch.h>

static int new_coming_value(int x)
{
	return COMING_N * 1000 + x;
}

static struct lp_func funcs[] = {
	{ .old_name = "coming_value", .new_func = new_coming_value },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = "libcoming.so", .funcs = funcs },
	{ 0 }
};

LP_PATCH(.objs = objs);
