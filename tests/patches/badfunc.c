/* SPDX-License-Identifier: MIT */
/* badfunc.c - bad input: a function the target does not have. */
#include <lpatch.h>

static int new_no_such_function(int x)
{
	return x;
}

static struct lp_func funcs[] = {
	{ .old_name = "no_such_function", .new_func = new_no_such_function, .old_sympos = 0 },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs },
	{ 0 }
};

LP_PATCH(.objs = objs);
