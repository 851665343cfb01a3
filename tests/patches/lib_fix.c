/* SPDX-License-Identifier: MIT */
/* lib_fix.c - libdemo.so: demo_lib_value(x) = x + 3000. */
#include <lpatch.h>

static int new_demo_lib_value(int x)
{
	return x + 3000;
}

static struct lp_func funcs[] = {
	{ .old_name = "demo_lib_value", .new_func = new_demo_lib_value, .old_sympos = 0 },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = "libdemo.so", .funcs = funcs },
	{ 0 }
};

LP_PATCH(.objs = objs);
