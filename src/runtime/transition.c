// SPDX-License-Identifier: MIT
/*
 * Transitions (kernel: transition.c).  A patch being enabled or disabled is
 * "in transition": its functions carry transition = true, so their stubs
 * choose per thread, by the thread's state, between the new and the
 * previous implementation.  Every thread starts in the opposite of the
 * target state and switches when none of the code being replaced is on its
 * stack: checked by the agent (check.c) or by the thread itself when it
 * enters a function of the patch (selfswitch.c).  When all have switched
 * the transition completes.  One patch is in transition at a time; all of
 * this runs under lp_mutex.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "runtime.h"

struct lp_patch_rt *lp_transition_patch;
int lp_target_state = LP_TASK_IDLE;

/* What a thread switching itself goes by; see selfswitch.c for when they change. */
_Atomic int lp_switch_target;
struct lp_forbidden *_Atomic lp_switch_forbidden;

__thread struct lp_task lp_current __attribute__((tls_model("initial-exec")));

/* LPATCH_TEST_NO_CONSISTENCY: every thread switches at once (tests only). */
static bool no_consistency;

int32_t lp_task_tpoff(const void *field)
{
	uintptr_t tp;

	/* glibc keeps the thread pointer itself at %fs:0. */
	__asm__("mov %%fs:0, %0" : "=r"(tp));
	return (int32_t)((intptr_t)field - (intptr_t)tp);
}

void lp_transition_setup(void)
{
	const char *knob = getenv("LPATCH_TEST_NO_CONSISTENCY");

	no_consistency = knob && knob[0] == '1';
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

/* Every thread's flags; clears the last check's findings too. */
static void set_all_threads(int state, int pending)
{
	struct lp_thread *t;

	pthread_mutex_lock(&lp_threads_lock);
	list_for_each_entry (t, &lp_thread_list, node) {
		lp_thread_set(t, state, pending);
		t->blocking = NULL;
		t->reason[0] = '\0';
	}
	pthread_mutex_unlock(&lp_threads_lock);
}

static void free_forbidden(struct lp_forbidden *f)
{
	while (f) {
		struct lp_forbidden *older = f->older;

		free(f);
		f = older;
	}
}

/*
 * What threads switching themselves go by.  Only called while no thread
 * checks itself (no pending byte is set), so the old ranges can go.
 */
static void publish(int target)
{
	struct lp_forbidden *old = atomic_load(&lp_switch_forbidden);

	atomic_store(&lp_switch_forbidden, target == LP_TASK_IDLE
					       ? NULL
					       : lp_forbidden_build(lp_transition_patch, target));
	atomic_store(&lp_switch_target, target);
	free_forbidden(old);
}

/*
 * A library of the patch in transition came or went: the code a thread
 * must not be running changed.  Threads may be checking themselves against
 * the old ranges right now, so those stay until the transition ends.
 */
void lp_transition_objects_changed(void)
{
	struct lp_forbidden *f;

	if (!lp_transition_patch)
		return;
	f = lp_forbidden_build(lp_transition_patch, lp_target_state);
	if (!f) {
		lp_log("'%s': out of memory: checks go by the code patched before",
		       lp_transition_patch->name);
		return;
	}
	f->older = atomic_load(&lp_switch_forbidden);
	atomic_store(&lp_switch_forbidden, f);
}

/*
 * Prepare @patch for a transition to @state (LP_TASK_PATCHED or
 * LP_TASK_UNPATCHED): every thread gets the opposite state, then the
 * patch's functions go into transition, so that no thread ever reads a
 * state left from before.
 */
void lp_init_transition(struct lp_patch_rt *patch, int state)
{
	lp_log("'%s': initializing %s transition", patch->name, state_name(state));
	lp_transition_patch = patch;
	lp_target_state = state;
	set_all_threads(state == LP_TASK_PATCHED ? LP_TASK_UNPATCHED : LP_TASK_PATCHED,
			LP_PENDING_NONE);
	atomic_thread_fence(memory_order_seq_cst);
	set_transition(patch, true);
}

/* Mark every thread not in the target state pending (kernel: klp_start_transition()). */
void lp_start_transition(void)
{
	struct lp_thread *t;

	lp_log("'%s': starting %s transition", lp_transition_patch->name,
	       state_name(lp_target_state));
	publish(lp_target_state);
	pthread_mutex_lock(&lp_threads_lock);
	list_for_each_entry (t, &lp_thread_list, node) {
		if (no_consistency)
			lp_thread_set(t, lp_target_state, LP_PENDING_NONE);
		else
			lp_thread_mark_pending(t, lp_target_state);
	}
	pthread_mutex_unlock(&lp_threads_lock);
}

static void run_post_callbacks(struct lp_patch_rt *patch, int state)
{
	for (size_t o = 0; o < patch->nobjs; o++) {
		struct lp_object_rt *obj = &patch->objs[o];

		if (!obj->mod)
			continue;
		if (state == LP_TASK_PATCHED)
			lp_post_patch_callback(obj);
		else
			lp_post_unpatch_callback(obj);
	}
}

/*
 * Kernel: klp_complete_transition().  The functions leave their stacks
 * (unpatching) and transition before the threads go back to IDLE: out of
 * transition every slot of a stub leads to the same code, whatever state a
 * thread still inside a stub holds (patch.c).
 */
static void complete_transition(void)
{
	struct lp_patch_rt *patch = lp_transition_patch;
	int state = lp_target_state;

	lp_log("'%s': completing %s transition", patch->name, state_name(state));
	if (state == LP_TASK_PATCHED && patch->desc->replace) {
		lp_unpatch_replaced(patch);
		lp_discard_nops(patch);
	}
	if (state == LP_TASK_UNPATCHED) {
		for (size_t o = 0; o < patch->nobjs; o++)
			lp_unpatch_object(&patch->objs[o], LP_UNPATCH_LIVE);
	}
	set_transition(patch, false);
	lp_check_quiesce();
	set_all_threads(LP_TASK_IDLE, LP_PENDING_NONE);
	publish(LP_TASK_IDLE);
	lp_check_release();
	/* Still the patch in transition: lp_get_prev_state() answers for it. */
	run_post_callbacks(patch, state);
	lp_log("'%s': %s complete", patch->name, state_name(state));
	lp_transition_patch = NULL;
	lp_target_state = LP_TASK_IDLE;
}

/* Check the threads not switched yet; complete when none is left. */
bool lp_try_complete_transition(bool signal_all)
{
	if (!no_consistency &&
	    lp_check_threads(atomic_load(&lp_switch_forbidden), lp_target_state, signal_all) > 0)
		return false;
	complete_transition();
	return true;
}

/*
 * Kernel: klp_reverse_transition().  No pending byte is set while the
 * target flips, so no thread checks itself against the old one; the
 * functions stay in transition throughout.
 */
void lp_reverse_transition(void)
{
	int target = lp_target_state == LP_TASK_PATCHED ? LP_TASK_UNPATCHED : LP_TASK_PATCHED;
	struct lp_thread *t;

	lp_log("'%s': reversing transition from %s to %s", lp_transition_patch->name,
	       state_name(lp_target_state), state_name(target));
	pthread_mutex_lock(&lp_threads_lock);
	list_for_each_entry (t, &lp_thread_list, node) {
		lp_thread_set(t, lp_thread_state(t), LP_PENDING_NONE);
		t->blocking = NULL;
		t->reason[0] = '\0';
	}
	pthread_mutex_unlock(&lp_threads_lock);
	lp_target_state = target;
	lp_start_transition();
}

/*
 * Kernel: klp_force_transition().  Every thread switches without a check;
 * the patch is marked forced, so its code stays loaded for good: a thread
 * may still be running it.  Returns how many threads were forced.
 */
int lp_force_transition(void)
{
	struct lp_thread *t;
	int forced = 0;

	lp_log("'%s': forcing remaining threads to the %s state", lp_transition_patch->name,
	       lp_target_state == LP_TASK_PATCHED ? "patched" : "unpatched");
	pthread_mutex_lock(&lp_threads_lock);
	list_for_each_entry (t, &lp_thread_list, node) {
		if (lp_thread_pending(t) == LP_PENDING_NONE &&
		    lp_thread_state(t) == lp_target_state)
			continue;
		lp_thread_set(t, lp_target_state, LP_PENDING_NONE);
		forced++;
	}
	pthread_mutex_unlock(&lp_threads_lock);
	lp_transition_patch->forced = true;
	return forced;
}

/* Enabling failed after the transition was set up: unpatch what was done. */
void lp_cancel_transition(void)
{
	lp_log("'%s': canceling patching transition, going to unpatch", lp_transition_patch->name);
	lp_target_state = LP_TASK_UNPATCHED;
	complete_transition();
}

/* Threads taking part, and those not switched yet. */
void lp_transition_counts(size_t *total, size_t *pending)
{
	struct lp_thread *t;

	*total = *pending = 0;
	pthread_mutex_lock(&lp_threads_lock);
	list_for_each_entry (t, &lp_thread_list, node) {
		(*total)++;
		*pending += lp_thread_pending(t) != LP_PENDING_NONE ||
			    lp_thread_state(t) != lp_target_state;
	}
	pthread_mutex_unlock(&lp_threads_lock);
}
