/* SPDX-License-Identifier: MIT */
/*
 * many_fix.c - stress/many: manyval(x) = 3x + 2 (originally 3x + 1).  Like
 * the original it parks the calling thread for a negative x, reporting 'P',
 * so that a thread can hold a transition open from inside the new code.
 */
#include <lpatch.h>

static int (*park_here)(int x, int who);

static int new_manyval(int x)
{
	if (x < 0)
		x = park_here(-x, 'P');
	return x * 3 + 2;
}

static struct lp_func funcs[] = {
	{ .old_name = "manyval", .new_func = new_manyval },
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
