/* SPDX-License-Identifier: MIT */
/*
 * park_p1.c - demo: compute(x) = x * 100, the first of two stacked patches
 * of compute() (tests/e2e/66-stacked.sh; compute_p2.c is the second).
 *
 * For a negative x it parks the thread inside this patch's compute(), like
 * park_fix.c, and once released calls compute(-x) again through the
 * target's compute(), adding 1: compute(-1) answers 101 when that call
 * reaches this patch too.  While a patch above this one is in transition,
 * the parked thread has this compute() on its stack, so that second call
 * must come back here (the next version down the function's stack), not
 * reach the original (11) nor the new patch.
 */
#include <lpatch.h>

static int (*park_here)(int x);
static int (*compute)(int x);

static int new_compute(int x)
{
	if (x < 0)
		return compute(park_here(-x)) + 1;
	return x * 100;
}

static struct lp_func funcs[] = {
	{ .old_name = "compute", .new_func = new_compute },
	{ 0 }
};

static struct lp_symbol syms[] = {
	LP_SYMBOL("park_here", park_here),
	LP_SYMBOL("compute", compute),
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs, .syms = syms },
	{ 0 }
};

LP_PATCH(.objs = objs);
