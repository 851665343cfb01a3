/* SPDX-License-Identifier: MIT */
/*
 * coming_short - replaces libcoming.so's coming_value and coming_short;
 * coming_short is too short for an entry jump, so a coming libcoming.so
 * must take neither (tests/e2e/47-coming-fail.sh).
 */
#include <lpatch.h>

static int new_coming_value(int x)
{
	return 5000 + x;
}

static int new_coming_short(int x)
{
	return x;
}

static struct lp_func funcs[] = {
	{ .old_name = "coming_value", .new_func = new_coming_value },
	{ .old_name = "coming_short", .new_func = new_coming_short },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = "libcoming.so", .funcs = funcs },
	{ 0 }
};

LP_PATCH(.objs = objs);
