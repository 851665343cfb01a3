// SPDX-License-Identifier: MIT
/* The live fix for shop's price(): the discount is for ten items or more. */
#include <lpatch.h>

/*
 * LP_PRESERVE_REGISTERS: the original leaves rcx alone, so a caller built
 * with -fipa-ra may keep a value there across the call; this version uses
 * it (lpatch refuses the patch otherwise: docs/writing-patches.md).
 */
static LP_PRESERVE_REGISTERS int fixed_price(int items, int unit_cents)
{
	int total = items * unit_cents;

	return items >= 10 ? total - total / 10 : total;
}

static struct lp_func funcs[] = {
	{ .old_name = "price", .new_func = fixed_price },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs }, /* NULL: the main program */
	{ 0 }
};

LP_PATCH(.objs = objs);
