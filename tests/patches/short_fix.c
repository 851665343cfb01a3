/* SPDX-License-Identifier: MIT */
/* short_fix.c - demo: too_short is 3 bytes long; lpatch must refuse it. */
#include <lpatch.h>

static int new_too_short(int x)
{
	return x + 1;
}

static struct lp_func funcs[] = {
	{ .old_name = "too_short", .new_func = new_too_short, .old_sympos = 0 },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs },
	{ 0 }
};

LP_PATCH(.objs = objs);
