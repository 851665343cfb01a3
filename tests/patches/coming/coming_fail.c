/* SPDX-License-Identifier: MIT */
/*
 * coming_fail - libcoming.so refuses it: its pre_patch callback fails.
 * It also replaces the main program's hold(x) (x + 1) with x + 100, so a
 * thread parked in hold() keeps its transition open while the library
 * comes (tests/e2e/47-coming-fail.sh).
 */
#include <lpatch.h>

static int refuse(struct lp_object *obj)
{
	lp_printf("coming_fail: pre_patch_callback: %s: refused", obj->name);
	return -1;
}

static int new_hold(int x)
{
	return x + 100;
}

static int new_coming_value(int x)
{
	return 4000 + x;
}

static struct lp_func main_funcs[] = {
	{ .old_name = "hold", .new_func = new_hold },
	{ 0 }
};

static struct lp_func lib_funcs[] = {
	{ .old_name = "coming_value", .new_func = new_coming_value },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = main_funcs },
	{ .name = "libcoming.so", .funcs = lib_funcs, .callbacks = { .pre_patch = refuse } },
	{ 0 }
};

LP_PATCH(.objs = objs);
