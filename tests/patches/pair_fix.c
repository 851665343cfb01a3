/* SPDX-License-Identifier: MIT */
/*
 * pair_fix.c - pairs: a new format, encode(x) = x ^ PAIR_KEY and
 * decode(v) = v ^ PAIR_KEY (originally 2x + 1 and (v - 1) / 2), and
 * run_pair() with them.
 *
 * run_pair() is replaced although its body does not change, as a kernel
 * livepatch replaces the callers of a function whose semantics change: a
 * thread inside the original run_pair() has the old run_pair() on its
 * stack, so the consistency model keeps it on the old code until it has
 * decoded what it encoded.
 */
#include <lpatch.h>

#include "../targets/pairs.h"

/*
 * The target's encode() and decode(): called at their original addresses,
 * they dispatch like any call of the target, per thread while this patch
 * is in transition.
 */
static int (*encode)(int x);
static int (*decode)(int v);

static int new_encode(int x)
{
	return x ^ PAIR_KEY;
}

static int new_decode(int v)
{
	return v ^ PAIR_KEY;
}

static int new_run_pair(int x)
{
	int v = encode(x);

	pair_work();
	return decode(v) == x ? PAIR_NEW : PAIR_MISMATCH;
}

static struct lp_func funcs[] = {
	{ .old_name = "encode", .new_func = new_encode },
	{ .old_name = "decode", .new_func = new_decode },
	{ .old_name = "run_pair", .new_func = new_run_pair },
	{ 0 }
};

static struct lp_symbol syms[] = {
	LP_SYMBOL("encode", encode),
	LP_SYMBOL("decode", decode),
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs, .syms = syms },
	{ 0 }
};

LP_PATCH(.objs = objs);
