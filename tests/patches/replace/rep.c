/* SPDX-License-Identifier: MIT */
/*
 * rep - patches of the demo target for atomic replace
 * (tests/e2e/52-replace.sh), one source built four times:
 *   REP_N 1, rep_a:  compute = 1000 + x, stacked = 1100 + x
 *   REP_N 2, rep_b:  stacked = 2100 + x, cet_func = 2200 + x
 *   REP_N 3, rep_c:  pad_func = 3300 + x, libdemo.so's demo_lib_value = 3400 + x
 *   REP_N 9, rep_r:  the replace patch: compute = 9000 + x, pad_func = 9300 + x
 * rep_r shares compute with rep_a and pad_func with rep_c, and lacks the
 * rest: stacked, cet_func and demo_lib_value run the original again once
 * it replaced the others.
 */
#include <lpatch.h>

#define NEW(name, base)                                                                            \
	static int new_##name(int x)                                                               \
	{                                                                                          \
		return (base) + x;                                                                 \
	}

#if REP_N == 1
NEW(compute, 1000)
NEW(stacked, 1100)
static struct lp_func main_funcs[] = {
	{ .old_name = "compute", .new_func = new_compute },
	{ .old_name = "stacked", .new_func = new_stacked },
	{ 0 }
};
#elif REP_N == 2
NEW(stacked, 2100)
NEW(cet_func, 2200)
static struct lp_func main_funcs[] = {
	{ .old_name = "stacked", .new_func = new_stacked },
	{ .old_name = "cet_func", .new_func = new_cet_func },
	{ 0 }
};
#elif REP_N == 3
NEW(pad_func, 3300)
NEW(demo_lib_value, 3400)
static struct lp_func main_funcs[] = {
	{ .old_name = "pad_func", .new_func = new_pad_func },
	{ 0 }
};
static struct lp_func lib_funcs[] = {
	{ .old_name = "demo_lib_value", .new_func = new_demo_lib_value },
	{ 0 }
};
#else
NEW(compute, 9000)
NEW(pad_func, 9300)
static struct lp_func main_funcs[] = {
	{ .old_name = "compute", .new_func = new_compute },
	{ .old_name = "pad_func", .new_func = new_pad_func },
	{ 0 }
};
#endif

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = main_funcs },
#if REP_N == 3
	{ .name = "libdemo.so", .funcs = lib_funcs },
#endif
	{ 0 }
};

LP_PATCH(.objs = objs, .replace = REP_N == 9);
