// SPDX-License-Identifier: MIT
/*
 * The live fix for table's price(), and for the table computed with the
 * old price() before the patch came: what callbacks are for.
 *
 *   post_patch    runs once every thread runs the new price(): the table
 *                 is rebuilt with it
 *   post_unpatch  runs once every thread runs the original again: the
 *                 table is rebuilt with that
 *
 * Rebuilding in pre_patch would be too early: a thread not switched yet
 * could still call the old price() meanwhile.
 *
 * fixed_price() is LP_PRESERVE_REGISTERS: table.c's rebuild_table(),
 * compiled with price() in one file, keeps its loop counter in rcx across
 * the call, because the compiler saw that price() leaves rcx alone.  lpatch
 * refuses a replacement that could change it.
 */
#include <lpatch.h>

static void (*rebuild_table)(void);

static LP_PRESERVE_REGISTERS int fixed_price(int items, int unit_cents)
{
	int total = items * unit_cents;

	return items >= 10 ? total - total / 10 : total;
}

static void post_patch(struct lp_object *obj)
{
	(void)obj;
	rebuild_table();
	lp_printf("fix_table: price table rebuilt with the fixed price()");
}

static void post_unpatch(struct lp_object *obj)
{
	(void)obj;
	rebuild_table();
	lp_printf("fix_table: price table rebuilt with the original price()");
}

static struct lp_func funcs[] = {
	{ .old_name = "price", .new_func = fixed_price },
	{ 0 }
};

static struct lp_symbol syms[] = {
	LP_SYMBOL("rebuild_table", rebuild_table),
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL,
	  .funcs = funcs,
	  .syms = syms,
	  .callbacks = { .post_patch = post_patch, .post_unpatch = post_unpatch } },
	{ 0 }
};

LP_PATCH(.objs = objs);
