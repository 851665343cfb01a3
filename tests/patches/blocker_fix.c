/* SPDX-License-Identifier: MIT */
/* blocker: blockval(x) = 3x + 1 becomes 3x + 2. */
#include <lpatch.h>

static int fixed_blockval(int x)
{
	return x * 3 + 2;
}

static struct lp_func funcs[] = {
	{ .old_name = "blockval", .new_func = fixed_blockval },
	{ 0 },
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs },
	{ 0 },
};

LP_PATCH(.objs = objs);
