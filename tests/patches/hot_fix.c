/* SPDX-License-Identifier: MIT */
/* hot_fix.c - hammer: hot(x) = 3x + 2 (originally 3x + 1). */
#include <lpatch.h>

static int new_hot(int x)
{
	return x * 3 + 2;
}

static struct lp_func funcs[] = {
	{ .old_name = "hot", .new_func = new_hot, .old_sympos = 0 },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs },
	{ 0 }
};

LP_PATCH(.objs = objs);
