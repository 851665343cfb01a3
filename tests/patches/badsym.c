/* SPDX-License-Identifier: MIT */
/* badsym.c - bad input: a symbol reference the target cannot resolve. */
#include <lpatch.h>

static int (*missing)(int);

static int new_compute(int x)
{
	return missing(x);
}

static struct lp_func funcs[] = {
	{ .old_name = "compute", .new_func = new_compute },
	{ 0 }
};

static struct lp_symbol syms[] = {
	LP_SYMBOL("no_such_symbol", missing),
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs, .syms = syms },
	{ 0 }
};

LP_PATCH(.objs = objs);
