/* SPDX-License-Identifier: MIT */
/* pad_fix.c - demo: pad_func, which has -fpatchable-function-entry padding. */
#include <lpatch.h>

static int new_pad_func(int x)
{
	return x + 5000;
}

static struct lp_func funcs[] = {
	{ .old_name = "pad_func", .new_func = new_pad_func, .old_sympos = 0 },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs },
	{ 0 }
};

LP_PATCH(.objs = objs);
