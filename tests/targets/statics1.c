/* SPDX-License-Identifier: MIT */
/*
 * statics1.c and statics2.c each define a static function named "helper":
 * the symbol table holds two, told apart by old_sympos 1 (this one, first
 * in link order) and 2 (statics2.c).
 */
#include "common.h"
#include "demo.h"

static PATCHABLE int helper(int x)
{
	return x * x + 10;
}

PATCHABLE int path1(int x)
{
	return helper(x);
}
