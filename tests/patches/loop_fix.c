/* SPDX-License-Identifier: MIT */
/* loop_fix.c - demo: loop_back branches into its first 5 bytes; lpatch must refuse it. */
#include <lpatch.h>

static int new_loop_back(int x)
{
	return x + 1;
}

static struct lp_func funcs[] = {
	{ .old_name = "loop_back", .new_func = new_loop_back, .old_sympos = 0 },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs },
	{ 0 }
};

LP_PATCH(.objs = objs);
