/* SPDX-License-Identifier: MIT */
/*
 * compute_p2.c - demo: compute(x) = x * 1000 + 2, a patch to stack on
 * park_p1.c (tests/e2e/66-stacked.sh): every result tells which of the
 * original (x * 3 + 7), park_p1 (x * 100) and this patch answered.
 */
#include <lpatch.h>

static int new_compute(int x)
{
	return x * 1000 + 2;
}

static struct lp_func funcs[] = {
	{ .old_name = "compute", .new_func = new_compute },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs },
	{ 0 }
};

LP_PATCH(.objs = objs);
