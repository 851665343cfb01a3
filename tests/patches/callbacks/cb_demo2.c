/* SPDX-License-Identifier: MIT */
/*
 * cb_demo2 - the kernel's test_klp_callbacks_demo2: callbacks for the main
 * program only, built as cb_demo2.so and, with CB_REPLACE, as the atomic
 * replace patch cb_demo2r.so (tests/e2e/56-callbacks.sh).
 */
#include <lpatch.h>

#ifdef CB_REPLACE
#define NAME "cb_demo2r"
#else
#define NAME "cb_demo2"
#endif

static int pre_patch(struct lp_object *obj)
{
	(void)obj;
	lp_printf(NAME ": pre_patch_callback: main");
	return 0;
}

static void post_patch(struct lp_object *obj)
{
	(void)obj;
	lp_printf(NAME ": post_patch_callback: main");
}

static void pre_unpatch(struct lp_object *obj)
{
	(void)obj;
	lp_printf(NAME ": pre_unpatch_callback: main");
}

static void post_unpatch(struct lp_object *obj)
{
	(void)obj;
	lp_printf(NAME ": post_unpatch_callback: main");
}

static struct lp_func no_funcs[] = { { 0 } };

static struct lp_object objs[] = {
	{ .name = NULL,
	  .funcs = no_funcs,
	  .callbacks = { .pre_patch = pre_patch,
			 .post_patch = post_patch,
			 .pre_unpatch = pre_unpatch,
			 .post_unpatch = post_unpatch } },
	{ 0 }
};

#ifdef CB_REPLACE
LP_PATCH(.objs = objs, .replace = true);
#else
LP_PATCH(.objs = objs);
#endif
