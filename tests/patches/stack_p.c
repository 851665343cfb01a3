/* SPDX-License-Identifier: MIT */
/*
 * stack_p.c - one of three patches of stacked(), built as stack_p1.so,
 * stack_p2.so and stack_p3.so with STACK_N = 1, 2, 3: patch N makes
 * stacked(x) return N * 10000 + x, so the result names the patch in charge.
 */
#include <lpatch.h>

static int new_stacked(int x)
{
	return STACK_N * 10000 + x;
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
