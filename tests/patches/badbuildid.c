/* SPDX-License-Identifier: MIT */
/* badbuildid.c - bad input: pins the main program to a build-id it lacks. */
#include <lpatch.h>

static int new_compute(int x)
{
	return x * 100;
}

static struct lp_func funcs[] = {
	{ .old_name = "compute", .new_func = new_compute },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs,
	  .build_id = "0123456789abcdef0123456789abcdef01234567" },
	{ 0 }
};

LP_PATCH(.objs = objs);
