/* SPDX-License-Identifier: MIT */
/* churn_fix.c - stress/churn: churnval(x) = 3x + 2 (originally 3x + 1). */
#include <lpatch.h>

static int new_churnval(int x)
{
	return x * 3 + 2;
}

static struct lp_func funcs[] = {
	{ .old_name = "churnval", .new_func = new_churnval },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs },
	{ 0 }
};

LP_PATCH(.objs = objs);
