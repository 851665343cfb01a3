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

enum { SLOT_TARGET, SLOT_PATCHED, SLOT_UNPATCHED, SLOT_SWITCH };

static const struct lp_ops_slots patch_slots = {SLOT_TARGET, SLOT_PATCHED, SLOT_UNPATCHED,
						SLOT_SWITCH};

static struct list_head ops_list = LIST_HEAD_INIT(ops_list);

static struct lp_ops *ops_find(uintptr_t func)
{
	struct lp_ops *ops;

	list_for_each_entry (ops, &ops_list, node)
		if (ops->prologue.func == func)
			return ops;
	return NULL;
}

/*
 * Lay out @ops's stubs, which jump through the slots @slots names, and the
 * relocated prologue after them; fill the slots (the three a call may take
 * with @target, 0 for the relocated original; the self-switch slot with
 * @self_switch, 0 for the same); then write the code once.  Shared with
 * the hooks of hook.c, whose stubs take one slot whatever the thread.
 */
int lp_ops_write_code(struct lp_ops *ops, const struct lp_ops_slots *slots, uintptr_t target,
		      uintptr_t self_switch, char *err, size_t errlen)
{
	uint8_t code[LP_TRAMP_CODE_SIZE];
	struct lp_stub_layout layout = {
	    .at = ops->stubs,
	    .slot_target = (uintptr_t)&ops->slots[slots->target],
	    .slot_patched = (uintptr_t)&ops->slots[slots->patched],
	    .slot_unpatched = (uintptr_t)&ops->slots[slots->unpatched],
	    .slot_switch = (uintptr_t)&ops->slots[slots->self_switch],
	    .state_tpoff = lp_task_tpoff(&lp_current.state),
	    .pending_tpoff = lp_task_tpoff(&lp_current.pending),
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
	ops->slots[slots->target] = target ? target : ops->orig;
	ops->slots[slots->patched] = target ? target : ops->orig;
	ops->slots[slots->unpatched] = target ? target : ops->orig;
	ops->slots[slots->self_switch] = self_switch ? self_switch : ops->orig;
	if (lp_text_write(ops->stubs, code, ops->off.size + (size_t)n) < 0) {
		snprintf(err, errlen, "cannot write the trampoline of %#lx: %s",
			 (unsigned long)ops->prologue.func, strerror(errno));
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
	if (lp_tramp_alloc(prologue->func, &ops->stubs, &ops->slots, err, errlen) < 0) {
		free(ops);
		return NULL;
	}
	if (lp_ops_write_code(ops, &patch_slots, 0, (uintptr_t)lp_arch_switch_entry, err, errlen) <
	    0) {
		lp_tramp_free(ops->stubs, ops->slots);
		free(ops);
		return NULL;
	}
	list_add(&ops->node, &ops_list);
	return ops;
}

/*
 * The function of an lp_ops is gone (its library is being unmapped): so is
 * every way into its stubs, which another function may have.
 */
static void ops_destroy(struct lp_ops *ops)
{
	list_del(&ops->node);
	lp_tramp_free(ops->stubs, ops->slots);
	free(ops);
}

/* An unpatched function whose lp_ops is kept must still hold the same code. */
static bool ops_matches(const struct lp_ops *ops, const struct lp_prologue *p)
{
	return ops->prologue.site == p->site && ops->prologue.len == p->len &&
	       memcmp(ops->prologue.orig, p->orig, p->len) == 0;
}

uintptr_t lp_func_impl(const struct lp_ops *ops, const struct lp_func_rt *func)
{
	if (!func || func->nop)
		return ops->orig;
	return (uintptr_t)func->new_func;
}

/* The func below @func on its function's stack, or NULL (kernel: the next in func_stack). */
struct lp_func_rt *lp_func_below(const struct lp_func_rt *func)
{
	if (!func->ops || func->stack_node.next == &func->ops->func_stack)
		return NULL;
	return list_entry(func->stack_node.next, struct lp_func_rt, stack_node);
}

/*
 * The ftrace handler's choice, precomputed: the top of the stack, or while
 * it is in transition, per thread between the top and the one below it.
 *
 * A thread may sit in the slow stub for any time between reading the target
 * slot and reading the others, so every slot must be right for any state
 * that thread may hold by then.  Out of transition every slot holds the top,
 * whatever the state.  In transition the patched and unpatched slots are
 * stored before the target leads to the slow stub, so that a thread that
 * got there sees them for this transition.
 */
void lp_ops_update(struct lp_ops *ops)
{
	struct lp_func_rt *top =
	    list_first_entry_or_null(&ops->func_stack, struct lp_func_rt, stack_node);
	uintptr_t impl = lp_func_impl(ops, top);
	bool transition = top && top->transition;

	atomic_store((_Atomic uintptr_t *)&ops->slots[SLOT_PATCHED], impl);
	atomic_store((_Atomic uintptr_t *)&ops->slots[SLOT_UNPATCHED],
		     transition ? lp_func_impl(ops, lp_func_below(top)) : impl);
	atomic_store((_Atomic uintptr_t *)&ops->slots[SLOT_TARGET],
		     transition ? ops->stubs + ops->off.slow : impl);
}

/* Write the entry jump; code that never ran needs none of text.c's care. */
static int install(struct lp_ops *ops, bool fresh, char *err, size_t errlen)
{
	if (fresh)
		return lp_text_set_jump_idle(ops, true, err, errlen);
	return lp_text_install_jump(ops, err, errlen);
}

static int patch_func(struct lp_func_rt *func, const struct lp_prologue *prologue, bool fresh,
		      char *err, size_t errlen)
{
	struct lp_ops *ops = ops_find(func->old_addr);

	if (ops && ops->hook) {
		snprintf(err, errlen, "'%s' is hooked by the lpatch runtime itself", func->name);
		return -1;
	}
	if (ops && !ops->installed && !ops_matches(ops, prologue)) {
		/* The code changed (a library reloaded at the same address): start afresh. */
		ops_destroy(ops);
		ops = NULL;
	}
	if (!ops && !(ops = ops_create(prologue, err, errlen)))
		return -1;
	func->ops = ops;
	list_add(&func->stack_node, &ops->func_stack);
	lp_ops_update(ops);
	if (!ops->installed && install(ops, fresh, err, errlen) < 0) {
		list_del(&func->stack_node);
		lp_ops_update(ops);
		func->ops = NULL;
		return -1;
	}
	func->patched = true;
	return 0;
}

static void unpatch_func(struct lp_func_rt *func, enum lp_unpatch how)
{
	struct lp_ops *ops = func->ops;
	char err[LP_ERR_MAX];

	list_del(&func->stack_node);
	lp_ops_update(ops);
	func->patched = false;
	func->ops = NULL;
	if (!list_empty(&ops->func_stack))
		return;
	switch (how) {
	case LP_UNPATCH_LIVE:
		if (ops->installed)
			lp_text_remove_jump(ops);
		return;
	case LP_UNPATCH_GOING:
		if (ops->installed && lp_text_set_jump_idle(ops, false, err, sizeof(err)) < 0) {
			lp_log("%s", err);
			return;
		}
		break;
	case LP_UNPATCH_GONE:
		break;
	}
	/* The function's code goes with its library: so does the lp_ops. */
	ops_destroy(ops);
}

/* Undo one function's redirect, while its code may run. */
void lp_unpatch_func(struct lp_func_rt *func)
{
	unpatch_func(func, LP_UNPATCH_LIVE);
}

/*
 * Undo every redirect of @obj, @how its code may be running: LIVE, while
 * any thread may; GOING, its library's destructors ran and it is unmapped
 * next; GONE, its library is unmapped already.
 */
void lp_unpatch_object(struct lp_object_rt *obj, enum lp_unpatch how)
{
	for (size_t i = obj->nfuncs; i-- > 0;)
		if (obj->funcs[i].patched)
			unpatch_func(&obj->funcs[i], how);
	obj->patched = false;
}

/*
 * Analyse the function at @addr.  Once it is redirected its first bytes are
 * our jump: its own were analysed when the jump went in.
 */
int lp_func_analyse(uintptr_t addr, size_t size, struct lp_prologue *p, char *why, size_t len)
{
	const struct lp_ops *ops = ops_find(addr);

	if (ops && ops->installed) {
		*p = ops->prologue;
		return 0;
	}
	return lp_arch_analyse((const uint8_t *)addr, size, addr, p, why, len);
}

/*
 * Redirect every function of @obj, or none.  @fresh: its library is
 * mapped but none of its code has run yet (it is coming).
 */
int lp_patch_object(struct lp_object_rt *obj, bool fresh, char *err, size_t errlen)
{
	for (size_t i = 0; i < obj->nfuncs; i++) {
		struct lp_func_rt *func = &obj->funcs[i];
		struct lp_prologue prologue;

		if (lp_func_analyse(func->old_addr, func->old_size, &prologue, err, errlen) < 0 ||
		    patch_func(func, &prologue, fresh, err, errlen) < 0) {
			lp_unpatch_object(obj, fresh ? LP_UNPATCH_GOING : LP_UNPATCH_LIVE);
			return -1;
		}
	}
	obj->patched = true;
	return 0;
}

/*
 * A copy of the @size bytes of the function at @addr as its file has them:
 * once redirected, its first bytes are our jump.  NULL when out of memory.
 */
uint8_t *lp_func_original_code(uintptr_t addr, size_t size)
{
	const struct lp_ops *ops = ops_find(addr);
	uint8_t *copy = malloc(size ? size : 1);

	if (!copy)
		return NULL;
	memcpy(copy, (const void *)addr, size);
	if (ops && ops->installed) {
		size_t off = ops->prologue.site - addr, len = ops->prologue.len;

		if (off < size)
			memcpy(copy + off, ops->prologue.orig, len < size - off ? len : size - off);
	}
	return copy;
}

/*
 * A redirect of the runtime's own: the function at @addr (@size bytes) runs
 * @handler instead, for good.  No patch can replace that function.
 */
int lp_ops_hook(uintptr_t addr, size_t size, void *handler, char *err, size_t errlen)
{
	static struct lp_func_rt hook_func = {.name = "(lpatch hook)"};
	struct lp_prologue prologue;
	struct lp_ops *ops;

	if (ops_find(addr)) {
		snprintf(err, errlen, "%#lx is patched already", (unsigned long)addr);
		return -1;
	}
	if (lp_arch_analyse((const uint8_t *)addr, size, addr, &prologue, err, errlen) < 0 ||
	    !(ops = ops_create(&prologue, err, errlen)))
		return -1;
	hook_func.new_func = handler;
	hook_func.ops = ops;
	list_init(&hook_func.stack_node);
	list_add(&hook_func.stack_node, &ops->func_stack);
	ops->hook = true;
	lp_ops_update(ops);
	if (lp_text_install_jump(ops, err, errlen) < 0) {
		ops_destroy(ops);
		return -1;
	}
	hook_func.patched = true;
	return 0;
}
