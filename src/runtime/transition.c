// SPDX-License-Identifier: MIT
/*
 * Transitions (kernel: transition.c).  A patch being enabled or disabled is
 * "in transition": its functions carry transition = true, so their stubs
 * choose per thread between the new and the previous implementation, by
 * the thread's state.  One patch is in transition at a time.
 *
 * In this version every thread switches at once when the transition
 * starts: the checks of each thread's stack that let threads switch one by
 * one come with the consistency model, on top of these same steps.
 */
#include <stdbool.h>

#include "runtime.h"

struct lp_patch_rt *lp_transition_patch;
int lp_target_state = -1;

__thread struct lp_task lp_current __attribute__((tls_model("initial-exec")));

int32_t lp_task_state_tpoff(void)
{
	uintptr_t tp;

	/* glibc keeps the thread pointer itself at %fs:0. */
	__asm__("mov %%fs:0, %0" : "=r"(tp));
	return (int32_t)((intptr_t)&lp_current.state - (intptr_t)tp);
}

static const char *state_name(int state)
{
	return state == LP_TASK_PATCHED ? "patching" : "unpatching";
}

static void set_transition(struct lp_patch_rt *patch, bool on)
{
	for (size_t o = 0; o < patch->nobjs; o++) {
		struct lp_object_rt *obj = &patch->objs[o];

		for (size_t i = 0; i < obj->nfuncs; i++) {
			obj->funcs[i].transition = on;
			if (obj->funcs[i].ops)
				lp_ops_update(obj->funcs[i].ops);
		}
	}
}

/*
 * Prepare @patch for a transition to @state (LP_TASK_PATCHED or
 * LP_TASK_UNPATCHED).  Threads keep the state they have: the opposite of
 * the target for every thread that has not switched.
 */
void lp_init_transition(struct lp_patch_rt *patch, int state)
{
	lp_log("'%s': initializing %s transition", patch->name, state_name(state));
	lp_transition_patch = patch;
	lp_target_state = state;
	set_transition(patch, true);
}

void lp_start_transition(void)
{
	lp_log("'%s': starting %s transition", lp_transition_patch->name,
	       state_name(lp_target_state));
}

static void run_post_callbacks(struct lp_patch_rt *patch, int state)
{
	for (size_t o = 0; o < patch->nobjs; o++) {
		struct lp_object_rt *obj = &patch->objs[o];
		const struct lp_callbacks *cb = &obj->desc->callbacks;

		if (!obj->loaded)
			continue;
		if (state == LP_TASK_PATCHED && cb->post_patch)
			cb->post_patch(obj->desc);
		if (state == LP_TASK_UNPATCHED && obj->pre_patch_done) {
			if (cb->post_unpatch)
				cb->post_unpatch(obj->desc);
			obj->pre_patch_done = false;
		}
	}
}

static void complete_transition(void)
{
	struct lp_patch_rt *patch = lp_transition_patch;
	int state = lp_target_state;

	lp_log("'%s': completing %s transition", patch->name, state_name(state));
	if (state == LP_TASK_UNPATCHED) {
		for (size_t o = 0; o < patch->nobjs; o++)
			lp_unpatch_object(&patch->objs[o]);
	}
	set_transition(patch, false);
	lp_transition_patch = NULL;
	lp_target_state = -1;
	run_post_callbacks(patch, state);
	lp_log("'%s': %s complete", patch->name, state_name(state));
}

/* Every thread switches at once, so the transition always completes here. */
bool lp_try_complete_transition(void)
{
	complete_transition();
	return true;
}

/* Enabling failed after the transition was set up: unpatch what was done. */
void lp_cancel_transition(void)
{
	lp_log("'%s': canceling patching transition, going to unpatch", lp_transition_patch->name);
	lp_target_state = LP_TASK_UNPATCHED;
	complete_transition();
}
