/* SPDX-License-Identifier: MIT */
/* helper_pos1.c - demo: the first static "helper" (statics1.c, path1). */
#include <lpatch.h>

static int new_helper(int x)
{
	return x + 500;
}

static struct lp_func funcs[] = {
	{ .old_name = "helper", .new_func = new_helper, .old_sympos = 1 },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs },
	{ 0 }
};

LP_PATCH(.objs = objs);
