/* SPDX-License-Identifier: MIT */
/*
 * symref.c - demo: use_secret(x) = secret_scale(x) + 2000, calling the
 * target's static secret_scale through a symbol reference (the original
 * adds 1).  Built as symref.so, and without LP_PRESERVE_REGISTERS as
 * symref_plain.so, which the runtime must refuse: the original calls a
 * function of its own file, so its callers may count on the registers
 * that function leaves alone, and a call through a pointer changes them
 * all (tests/e2e/45-unpatchable.sh).
 */
#include <lpatch.h>

static int (*secret_scale)(int);

#ifdef PLAIN
#undef LP_PRESERVE_REGISTERS
#define LP_PRESERVE_REGISTERS
#endif

static LP_PRESERVE_REGISTERS int new_use_secret(int x)
{
	return secret_scale(x) + 2000;
}

static struct lp_func funcs[] = {
	{ .old_name = "use_secret", .new_func = new_use_secret },
	{ 0 }
};

static struct lp_symbol syms[] = {
	LP_SYMBOL("secret_scale", secret_scale),
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs, .syms = syms },
	{ 0 }
};

LP_PATCH(.objs = objs);
