// SPDX-License-Identifier: MIT
/*
 * A function of a library redirected to one of the runtime's for good,
 * the original still callable: the entry jump and relocated prologue of a
 * patch (patch.c), written the same safe way (text.c), without a
 * func_stack or a transition.  An injected runtime catches the threads the
 * program creates this way (task.c).  The hook is not an lp_ops of
 * patch.c's list: a patch of the same function finds the hook's jump at
 * its entry, and displaces it like any other instruction.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

enum { HOOK_SLOT, HOOK_SLOT_UNUSED };

/* Never freed: a thread may be in a hook's stubs, and the trap handler reads them. */
static struct list_head hooks = LIST_HEAD_INIT(hooks);

/* The stubs jump through one slot whatever the thread's state; the orig stub follows. */
static int write_code(struct lp_ops *ops, void *to, char *err, size_t errlen)
{
	uint8_t code[LP_TRAMP_CODE_SIZE];
	struct lp_stub_layout layout = {
	    .at = ops->stubs,
	    .slot_target = (uintptr_t)&ops->slots[HOOK_SLOT],
	    .slot_patched = (uintptr_t)&ops->slots[HOOK_SLOT],
	    .slot_unpatched = (uintptr_t)&ops->slots[HOOK_SLOT],
	    .slot_switch = (uintptr_t)&ops->slots[HOOK_SLOT_UNUSED],
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
	ops->slots[HOOK_SLOT] = (uintptr_t)to;
	ops->slots[HOOK_SLOT_UNUSED] = ops->orig;
	if (lp_text_write(ops->stubs, code, ops->off.size + (size_t)n) < 0) {
		snprintf(err, errlen, "cannot write the trampoline of %#lx",
			 (unsigned long)ops->prologue.func);
		return -1;
	}
	return 0;
}

/*
 * Redirect the function at @func (@size bytes) to @to.  *@orig is where
 * the original can be called, stored before the jump is written: @to may be
 * called (and need it) as soon as it is.  Refused, with the reason, where
 * a patch would be; *@orig may still have been set, and calls the
 * original all the same.
 */
int lp_hook(uintptr_t func, size_t size, void *to, void *_Atomic *orig, char *err, size_t errlen)
{
	struct lp_ops *ops = calloc(1, sizeof(*ops));
	char why[LP_ERR_MAX];

	if (!ops) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (lp_func_analyse(func, size, &ops->prologue, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "cannot redirect %#lx: %s", (unsigned long)func, why);
		free(ops);
		return -1;
	}
	list_init(&ops->func_stack);
	/* The trampoline memory stays reserved on failure; it was never reachable. */
	if (lp_tramp_alloc(func, &ops->stubs, &ops->slots, err, errlen) < 0 ||
	    write_code(ops, to, err, errlen) < 0) {
		free(ops);
		return -1;
	}
	/* The copy stays: *orig may be in use whatever comes next. */
	list_add(&ops->node, &hooks);
	atomic_store(orig, (void *)ops->orig);
	return lp_text_install_jump(ops, err, errlen);
}
