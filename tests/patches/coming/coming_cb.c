/* SPDX-License-Identifier: MIT */
/*
 * coming_cb - coming_value(x) = 3000 + x in libcoming.so, and hold(x) =
 * x + 300 in the main program (parking in the target's park_here() for a
 * negative x, so a thread can hold a transition open inside the patch),
 * with every callback of both objects logging itself, so that the tests
 * can compare the order with the kernel's (test-callbacks.sh: "module
 * loaded after the livepatch", "module unloaded during a transition").
 */
#include <lpatch.h>

static const char *obj_name(const struct lp_object *obj)
{
	return obj->name ? obj->name : "main";
}

static int pre_patch(struct lp_object *obj)
{
	lp_printf("coming_cb: pre_patch_callback: %s", obj_name(obj));
	return 0;
}

static void post_patch(struct lp_object *obj)
{
	lp_printf("coming_cb: post_patch_callback: %s", obj_name(obj));
}

static void pre_unpatch(struct lp_object *obj)
{
	lp_printf("coming_cb: pre_unpatch_callback: %s", obj_name(obj));
}

static void post_unpatch(struct lp_object *obj)
{
	lp_printf("coming_cb: post_unpatch_callback: %s", obj_name(obj));
}

static int new_coming_value(int x)
{
	return 3000 + x;
}

static int (*park_here)(int);

static int new_hold(int x)
{
	if (x < 0)
		x = park_here(-x);
	return x + 300;
}

static struct lp_func main_funcs[] = {
	{ .old_name = "hold", .new_func = new_hold },
	{ 0 }
};

static struct lp_symbol main_syms[] = {
	LP_SYMBOL("park_here", park_here),
	{ 0 }
};

static struct lp_func lib_funcs[] = {
	{ .old_name = "coming_value", .new_func = new_coming_value },
	{ 0 }
};

#define CALLBACKS                                                                                  \
	{                                                                                          \
		.pre_patch = pre_patch, .post_patch = post_patch, .pre_unpatch = pre_unpatch,      \
		.post_unpatch = post_unpatch                                                       \
	}

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = main_funcs, .syms = main_syms, .callbacks = CALLBACKS },
	{ .name = "libcoming.so", .funcs = lib_funcs, .callbacks = CALLBACKS },
	{ 0 }
};

LP_PATCH(.objs = objs);
