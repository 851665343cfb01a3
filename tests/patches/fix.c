/* SPDX-License-Identifier: MIT */
/* fix.c - demo: compute(x) = x * 100 (originally x * 3 + 7). */
#include <lpatch.h>

static int new_compute(int x)
{
	return x * 100;
}

static struct lp_func funcs[] = {
	{ .old_name = "compute", .new_func = new_compute, .old_sympos = 0 },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs },
	{ 0 }
};

LP_PATCH(.objs = objs);
