// SPDX-License-Identifier: MIT
/*
 * Redirects (kernel: patch.c).  Every patched function has one lp_ops: its
 * stubs, and the stack of patch functions that replace it, newest first.
 * The stubs never change once written; what a call runs is decided by three
 * slots the stubs jump through, recomputed here whenever the stack or a
 * transition flag changes, with the kernel's ftrace-handler rules.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

enum { SLOT_TARGET, SLOT_PATCHED, SLOT_UNPATCHED };

static struct list_head ops_list = LIST_HEAD_INIT(ops_list);

static struct lp_ops *ops_find(uintptr_t func)
{
	struct lp_ops *ops;

	list_for_each_entry (ops, &ops_list, node)
		if (ops->prologue.func == func)
			return ops;
	return NULL;
}

/* Lay out the stubs and the relocated prologue, then write them once. */
static int ops_write_code(struct lp_ops *ops, char *err, size_t errlen)
{
	uint8_t code[LP_TRAMP_CODE_SIZE];
	struct lp_stub_layout layout = {
	    .at = ops->stubs,
	    .slot_target = (uintptr_t)&ops->slots[SLOT_TARGET],
	    .slot_patched = (uintptr_t)&ops->slots[SLOT_PATCHED],
	    .slot_unpatched = (uintptr_t)&ops->slots[SLOT_UNPATCHED],
	    .state_tpoff = lp_task_state_tpoff(),
	    .state_unpatched = LP_TASK_UNPATCHED,
	};
	ssize_t n;

	memset(code, 0xcc, sizeof(code));
	if (lp_arch_emit_stubs(&layout, code, sizeof(code), &ops->off) < 0) {
		snprintf(err, errlen, "cannot lay out the stubs for %#lx",
			 (unsigned long)ops->prologue.func);
		return -1;
	}
	ops->orig = ops->stubs + ops->off.size;
	n = lp_arch_relocate(&ops->prologue, code + ops->off.size, sizeof(code) - ops->off.size,
			     ops->orig, ops->insn_map, err, errlen);
	if (n < 0)
		return -1;
	for (int i = 0; i < LP_TRAMP_SLOTS; i++)
		ops->slots[i] = ops->orig;
	if (lp_text_write(ops->stubs, code, ops->off.size + (size_t)n) < 0) {
		snprintf(err, errlen, "cannot write the trampoline: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static struct lp_ops *ops_create(const struct lp_prologue *prologue, char *err, size_t errlen)
{
	struct lp_ops *ops = calloc(1, sizeof(*ops));

	if (!ops) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ops->prologue = *prologue;
	list_init(&ops->func_stack);
	if (lp_tramp_alloc(prologue->func, &ops->stubs, &ops->slots, err, errlen) < 0 ||
	    ops_write_code(ops, err, errlen) < 0) {
		/* The trampoline memory stays reserved; it was never reachable. */
		free(ops);
		return NULL;
	}
	list_add(&ops->node, &ops_list);
	return ops;
}

/* An unpatched function whose lp_ops is kept must still hold the same code. */
static bool ops_matches(const struct lp_ops *ops, const struct lp_prologue *p)
{
	return ops->prologue.site == p->site && ops->prologue.len == p->len &&
	       memcmp(ops->prologue.orig, p->orig, p->len) == 0;
}

static uintptr_t impl(const struct lp_ops *ops, const struct lp_func_rt *func)
{
	if (!func || func->nop)
		return ops->orig;
	return (uintptr_t)func->new_func;
}

/*
 * The ftrace handler's choice, precomputed: the top of the stack, or while
 * it is in transition, per thread between the top and the one below it.
 */
void lp_ops_update(struct lp_ops *ops)
{
	struct lp_func_rt *top =
	    list_first_entry_or_null(&ops->func_stack, struct lp_func_rt, stack_node);
	struct lp_func_rt *next = NULL;
	uintptr_t target;

	if (top && top->stack_node.next != &ops->func_stack)
		next = list_entry(top->stack_node.next, struct lp_func_rt, stack_node);
	atomic_store((_Atomic uintptr_t *)&ops->slots[SLOT_PATCHED], impl(ops, top));
	atomic_store((_Atomic uintptr_t *)&ops->slots[SLOT_UNPATCHED], impl(ops, next));
	target = top && top->transition ? ops->stubs + ops->off.slow : impl(ops, top);
	atomic_store((_Atomic uintptr_t *)&ops->slots[SLOT_TARGET], target);
}

static int patch_func(struct lp_func_rt *func, const struct lp_prologue *prologue, char *err,
		      size_t errlen)
{
	struct lp_ops *ops = ops_find(func->old_addr);

	if (ops && !ops->installed && !ops_matches(ops, prologue)) {
		/* The code changed (a library reloaded at the same address): start afresh. */
		list_del(&ops->node);
		ops = NULL;
	}
	if (!ops && !(ops = ops_create(prologue, err, errlen)))
		return -1;
	func->ops = ops;
	list_add(&func->stack_node, &ops->func_stack);
	lp_ops_update(ops);
	if (!ops->installed && lp_text_install_jump(ops, err, errlen) < 0) {
		list_del(&func->stack_node);
		lp_ops_update(ops);
		func->ops = NULL;
		return -1;
	}
	func->patched = true;
	return 0;
}

static void unpatch_func(struct lp_func_rt *func)
{
	struct lp_ops *ops = func->ops;

	list_del(&func->stack_node);
	lp_ops_update(ops);
	if (list_empty(&ops->func_stack) && ops->installed)
		lp_text_remove_jump(ops);
	func->patched = false;
}

void lp_unpatch_object(struct lp_object_rt *obj)
{
	for (size_t i = obj->nfuncs; i-- > 0;)
		if (obj->funcs[i].patched)
			unpatch_func(&obj->funcs[i]);
	obj->patched = false;
}

int lp_patch_object(struct lp_object_rt *obj, char *err, size_t errlen)
{
	for (size_t i = 0; i < obj->nfuncs; i++) {
		struct lp_func_rt *func = &obj->funcs[i];
		struct lp_prologue prologue;

		if (lp_arch_analyse((const uint8_t *)func->old_addr, func->old_size, func->old_addr,
				    &prologue, err, errlen) < 0 ||
		    patch_func(func, &prologue, err, errlen) < 0) {
			lp_unpatch_object(obj);
			return -1;
		}
	}
	obj->patched = true;
	return 0;
}
