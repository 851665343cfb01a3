// SPDX-License-Identifier: MIT
/*
 * The code a thread must not be running, nor be due to return into, when it
 * switches to the transition's target (kernel: klp_check_stack_func()):
 *
 *   patching:   for every function of the patch, the implementation it
 *               replaces: the next one down the function's stack, or the
 *               original function when there is none;
 *   unpatching: the patch's own new functions.
 *
 * Kept as one sorted array of disjoint ranges, built once per transition
 * direction, so that a check is a binary search per stack word or frame.
 */
#include <stdlib.h>

#include "runtime.h"

static int cmp_range(const void *a, const void *b)
{
	const struct lp_range *x = a, *y = b;

	return (x->lo > y->lo) - (x->lo < y->lo);
}

/* A patch's replacement function; all of the patch's text when its size is unknown. */
static struct lp_range new_code(const struct lp_func_rt *func, const char *name)
{
	uintptr_t lo = (uintptr_t)func->new_func;

	if (!func->new_size)
		return (struct lp_range){func->patch->text_lo, func->patch->text_hi, name};
	return (struct lp_range){lo, lo + func->new_size, name};
}

static size_t add_func(struct lp_range *r, const struct lp_func_rt *func, int target)
{
	const struct lp_func_rt *prev;

	if (!func->patched)
		return 0;
	if (target == LP_TASK_UNPATCHED) {
		if (func->nop)
			return 0;
		r[0] = new_code(func, func->name);
		return 1;
	}
	prev = lp_func_below(func);
	if (prev && !prev->nop)
		r[0] = new_code(prev, func->name);
	else
		r[0] =
		    (struct lp_range){func->old_addr, func->old_addr + func->old_size, func->name};
	return 1;
}

/* Sort, then merge overlaps so that a binary search finds any covering range. */
static void normalise(struct lp_forbidden *f)
{
	size_t out = 0;

	qsort(f->r, f->n, sizeof(f->r[0]), cmp_range);
	for (size_t i = 0; i < f->n; i++) {
		if (out && f->r[i].lo < f->r[out - 1].hi) {
			if (f->r[i].hi > f->r[out - 1].hi)
				f->r[out - 1].hi = f->r[i].hi;
			continue;
		}
		f->r[out++] = f->r[i];
	}
	f->n = out;
}

struct lp_forbidden *lp_forbidden_build(const struct lp_patch_rt *patch, int target)
{
	size_t n = 0;
	struct lp_forbidden *f;

	for (size_t o = 0; o < patch->nobjs; o++)
		n += patch->objs[o].nfuncs;
	f = calloc(1, sizeof(*f) + (n ? n : 1) * sizeof(f->r[0]));
	if (!f)
		return NULL;
	for (size_t o = 0; o < patch->nobjs; o++) {
		const struct lp_object_rt *obj = &patch->objs[o];

		for (size_t i = 0; i < obj->nfuncs; i++)
			f->n += add_func(&f->r[f->n], &obj->funcs[i], target);
	}
	normalise(f);
	return f;
}

/* Async-signal-safe: a thread checks its own stack with it. */
const struct lp_range *lp_forbidden_find(const struct lp_forbidden *f, uintptr_t addr)
{
	size_t lo = 0, hi = f->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (addr < f->r[mid].lo)
			hi = mid;
		else if (addr >= f->r[mid].hi)
			lo = mid + 1;
		else
			return &f->r[mid];
	}
	return NULL;
}
