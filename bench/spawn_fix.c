/* SPDX-License-Identifier: MIT */
/* spawn_fix.c - the patch of bench/spawn: bench_work(x) = 3x + 2 (was 3x + 1). */
#include <lpatch.h>

static int new_work(int x)
{
	return x * 3 + 2;
}

static struct lp_func funcs[] = {
    {.old_name = "bench_work", .new_func = new_work},
    {0},
};

static struct lp_object objs[] = {
    {.name = NULL, .funcs = funcs},
    {0},
};

LP_PATCH(.objs = objs);
