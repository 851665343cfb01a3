/* SPDX-License-Identifier: MIT */
/* static_fix.c - demo: the static secret_scale(x) = 7000 + x (originally x * x + 1). */
#include <lpatch.h>

static int new_secret_scale(int x)
{
	return 7000 + x;
}

static struct lp_func funcs[] = {
	{ .old_name = "secret_scale", .new_func = new_secret_scale, .old_sympos = 0 },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs },
	{ 0 }
};

LP_PATCH(.objs = objs);
