/* SPDX-License-Identifier: MIT */
/*
 * churn_lib_fix.c - stress/churn: churnval(x) = 3x + 2 (originally 3x + 1),
 * and demo_lib_value(x) = x + 5000 in libdemo.so (originally 11x + 3),
 * which the target loads and unloads over and over: each load must be
 * patched by the runtime's hook for libraries coming, and each unload
 * unpatched before the library is unmapped, whatever the transitions do
 * meanwhile (72-parked.sh with LP_CHURN_LIB=1).
 */
#include <lpatch.h>

static int new_churnval(int x)
{
	return x * 3 + 2;
}

static int new_demo_lib_value(int x)
{
	return x + 5000;
}

static struct lp_func main_funcs[] = {
	{ .old_name = "churnval", .new_func = new_churnval },
	{ 0 }
};

static struct lp_func lib_funcs[] = {
	{ .old_name = "demo_lib_value", .new_func = new_demo_lib_value },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = main_funcs },
	{ .name = "libdemo.so", .funcs = lib_funcs },
	{ 0 }
};

LP_PATCH(.objs = objs);
