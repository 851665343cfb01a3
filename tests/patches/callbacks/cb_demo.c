/* SPDX-License-Identifier: MIT */
/*
 * cb_demo - the kernel's test_klp_callbacks_demo for the callbacks target
 * (tests/e2e/56-callbacks.sh): every callback of its three objects (the
 * main program, libcbmod.so, libcbbusy.so) logs itself with the object's
 * state, pre_patch returns the target's cb_pre_patch_ret, and
 * libcbbusy.so's busy_work() is replaced.
 */
#include <lpatch.h>

static volatile int *pre_patch_ret;

static void callback_info(const char *callback, const struct lp_object *obj)
{
	static const char *const states[] = {
		[LP_OBJECT_NOT_LOADED] = "[NOT_LOADED] not loaded",
		[LP_OBJECT_COMING] = "[COMING] loading, its constructors not run yet",
		[LP_OBJECT_LIVE] = "[LIVE] normal state",
		[LP_OBJECT_GOING] = "[GOING] unloading, its destructors ran",
	};

	if (obj->name)
		lp_printf("cb_demo: %s: %s -> %s", callback, obj->name,
			  states[lp_object_state(obj)]);
	else
		lp_printf("cb_demo: %s: main", callback);
}

static int pre_patch(struct lp_object *obj)
{
	callback_info("pre_patch_callback", obj);
	return *pre_patch_ret;
}

static void post_patch(struct lp_object *obj)
{
	callback_info("post_patch_callback", obj);
}

static void pre_unpatch(struct lp_object *obj)
{
	callback_info("pre_unpatch_callback", obj);
}

static void post_unpatch(struct lp_object *obj)
{
	callback_info("post_unpatch_callback", obj);
}

static int patched_busy_work(int block)
{
	lp_printf("cb_demo: patched busy_work");
	return block;
}

static struct lp_func no_funcs[] = { { 0 } };

static struct lp_func busy_funcs[] = {
	{ .old_name = "busy_work", .new_func = patched_busy_work },
	{ 0 }
};

static struct lp_symbol main_syms[] = {
	LP_SYMBOL("cb_pre_patch_ret", pre_patch_ret),
	{ 0 }
};

#define CALLBACKS                                                                                  \
	{                                                                                          \
		.pre_patch = pre_patch, .post_patch = post_patch, .pre_unpatch = pre_unpatch,      \
		.post_unpatch = post_unpatch                                                       \
	}

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = no_funcs, .syms = main_syms, .callbacks = CALLBACKS },
	{ .name = "libcbmod.so", .funcs = no_funcs, .callbacks = CALLBACKS },
	{ .name = "libcbbusy.so", .funcs = busy_funcs, .callbacks = CALLBACKS },
	{ 0 }
};

LP_PATCH(.objs = objs);
