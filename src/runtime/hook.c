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

/* The stubs jump through one slot whatever the thread's state. */
static const struct lp_ops_slots hook_slots = {HOOK_SLOT, HOOK_SLOT, HOOK_SLOT, HOOK_SLOT_UNUSED};

/* Never freed: a thread may be in a hook's stubs, and the trap handler reads them. */
static struct list_head hooks = LIST_HEAD_INIT(hooks);

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
	    lp_ops_write_code(ops, &hook_slots, (uintptr_t)to, 0, err, errlen) < 0) {
		free(ops);
		return -1;
	}
	/* The copy stays: *orig may be in use whatever comes next. */
	list_add(&ops->node, &hooks);
	atomic_store(orig, (void *)ops->orig);
	return lp_text_install_jump(ops, err, errlen);
}
