/* SPDX-License-Identifier: MIT */
/*
 * qsort_fix.c - libc.so.6: qsort() sorts in descending order, but only for
 * the demo target's comparator demo_cmp_int (found through a symbol
 * reference), so that every other qsort caller in the process is unaffected.
 * glibc's qsort starts with `xor %r8d,%r8d; jmp qsort_r`: the displaced
 * relative jump must be relocated.
 */
#include <stddef.h>
#include <stdlib.h>

#include <lpatch.h>

typedef int (*cmp_fn)(const void *, const void *);

static cmp_fn demo_cmp_int;

static int reversed(const void *a, const void *b, void *cmp)
{
	return ((cmp_fn)cmp)(b, a);
}

static int forward(const void *a, const void *b, void *cmp)
{
	return ((cmp_fn)cmp)(a, b);
}

static void new_qsort(void *base, size_t n, size_t size, cmp_fn cmp)
{
	qsort_r(base, n, size, cmp == demo_cmp_int ? reversed : forward,
		(void *)cmp);
}

static struct lp_func no_funcs[] = { { 0 } };

static struct lp_symbol main_syms[] = {
	LP_SYMBOL("demo_cmp_int", demo_cmp_int),
	{ 0 }
};

static struct lp_func libc_funcs[] = {
	{ .old_name = "qsort", .new_func = new_qsort },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = no_funcs, .syms = main_syms },
	{ .name = "libc.so.6", .funcs = libc_funcs },
	{ 0 }
};

LP_PATCH(.objs = objs);
