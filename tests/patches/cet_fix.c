/* SPDX-License-Identifier: MIT */
/* cet_fix.c - demo: cet_func, which starts with endbr64. */
#include <lpatch.h>

static int new_cet_func(int x)
{
	return x + 4000;
}

static struct lp_func funcs[] = {
	{ .old_name = "cet_func", .new_func = new_cet_func, .old_sympos = 0 },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs },
	{ 0 }
};

LP_PATCH(.objs = objs);
