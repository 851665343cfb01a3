/* SPDX-License-Identifier: MIT */
/* helper_pos2.c - demo: the second static "helper" (statics2.c, path2). */
#include <lpatch.h>

static int new_helper(int x)
{
	return x + 500;
}

static struct lp_func funcs[] = {
	{ .old_name = "helper", .new_func = new_helper, .old_sympos = 2 },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs },
	{ 0 }
};

LP_PATCH(.objs = objs);
