/* SPDX-License-Identifier: MIT */
/*
 * park_fix.c - demo: compute(x) = x * 100, and like the original it parks
 * the calling thread for a negative x, so that a thread can be held inside
 * the patch's own code while the patch is reverted.
 */
#include <lpatch.h>

static int (*park_here)(int x);

static int new_compute(int x)
{
	if (x < 0)
		x = park_here(-x);
	return x * 100;
}

static struct lp_func funcs[] = {
	{ .old_name = "compute", .new_func = new_compute },
	{ 0 }
};

static struct lp_symbol syms[] = {
	LP_SYMBOL("park_here", park_here),
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs, .syms = syms },
	{ 0 }
};

LP_PATCH(.objs = objs);
