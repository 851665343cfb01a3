/* SPDX-License-Identifier: MIT */
/* statics2.c - the second static "helper" (old_sympos 2); see statics1.c. */
#include "common.h"
#include "demo.h"

static PATCHABLE int helper(int x)
{
	return x * x + 20;
}

PATCHABLE int path2(int x)
{
	return helper(x);
}
