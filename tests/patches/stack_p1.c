/* SPDX-License-Identifier: MIT */
/* stack_p1.c - first of three patches of stacked(). */
#include <lpatch.h>

static int new_stacked(int x)
{
	return 10000 + x;
}

static struct lp_func funcs[] = {
	{ .old_name = "stacked", .new_func = new_stacked, .old_sympos = 0 },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs },
	{ 0 }
};

LP_PATCH(.objs = objs);
