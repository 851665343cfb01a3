/* SPDX-License-Identifier: MIT */
/*
 * demo: compute(x) = 3x + 7 becomes 100x, for `apply --all`
 * (tests/e2e/86-apply-all.sh), pinned to this build's demo by its
 * build-id (DEMO_BUILD_ID, from demo_build_id.h), so that it selects only
 * the demo processes of this build, none of another worktree's.
 */
#include <lpatch.h>

#include "demo_build_id.h"

static int fixed_compute(int x)
{
	return x * 100;
}

static struct lp_func funcs[] = {
	{ .old_name = "compute", .new_func = fixed_compute },
	{ 0 },
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs, .build_id = DEMO_BUILD_ID },
	{ 0 },
};

LP_PATCH(.objs = objs);
