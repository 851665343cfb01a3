// SPDX-License-Identifier: MIT
/*
 * A pending thread switching itself (kernel: the switch at exit to user
 * space and in cond_resched()).  The slow stub of a function in transition
 * calls lp_task_self_switch() for a thread whose pending byte is set, at
 * the function's entry: the function is not on the stack yet, so when no
 * word of the stack above the entry points into forbidden code the thread
 * can switch before the stub dispatches.  Without this a thread that lives
 * inside patched functions (an event loop, a worker always in the hot
 * function) would never be seen clean by the agent.
 *
 * It runs at the entry of any function, in any context: inside a signal
 * handler that interrupted malloc or the loader, with little stack left.  So
 * it takes no lock, allocates nothing, calls nothing that could, and reads
 * only its own stack and data the agent keeps still while it runs: the
 * forbidden ranges and the target are changed only when no thread holds
 * its pending byte in LP_PENDING_SELF.
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>

#include "runtime.h"

/*
 * A conservative check: any word in [@from, @end) that points into
 * forbidden code (other than a function's first byte, which is a function
 * pointer, not a return address), or into a trampoline (a frame interrupted
 * between a function's entry and its implementation), makes it unclean.
 * A return address is always a word of the stack, so clean means clean.
 * *@blocking names the first forbidden function found (if @blocking).
 */
__attribute__((no_sanitize("address"))) bool lp_stack_words_clean(const struct lp_forbidden *f,
								  const uintptr_t *from,
								  const uintptr_t *end,
								  const char **blocking)
{
	for (const volatile uintptr_t *p = from; p < end; p++) {
		uintptr_t w = *p;
		const struct lp_range *r = lp_forbidden_find(f, w);

		if (r && w != r->lo && blocking)
			*blocking = r->name;
		if ((r && w != r->lo) || lp_tramp_contains(w))
			return false;
	}
	return true;
}

static bool own_stack_clean(const struct lp_task *t, uintptr_t sp)
{
	const struct lp_forbidden *f = atomic_load(&lp_switch_forbidden);

	/* On another stack (sigaltstack, a coroutine) the frames below are out of sight. */
	if (!f || sp < t->stack_lo || sp >= t->stack_hi)
		return false;
	return lp_stack_words_clean(f, (const uintptr_t *)sp, (const uintptr_t *)t->stack_hi, NULL);
}

/* Take the pending byte from LP_PENDING; false when there is nothing to do. */
static bool claim_self(struct lp_task *t)
{
	uint8_t p = LP_PENDING;

	while (!atomic_compare_exchange_weak(&t->pending, &p, LP_PENDING_SELF)) {
		switch (p) {
		case LP_PENDING_AGENT:
			/* The agent is switching us: its verdict comes in microseconds. */
			sched_yield();
			break;
		case LP_PENDING_SELF:
			/* A signal handler inside our own check: go by the state as it is. */
			atomic_fetch_add(&t->fails, 1);
			return false;
		case LP_PENDING_NONE:
			return false;
		}
		p = LP_PENDING;
	}
	return true;
}

void lp_task_self_switch(uintptr_t sp)
{
	struct lp_task *t = &lp_current;
	int saved_errno = errno;

	if (claim_self(t)) {
		uint8_t target = (uint8_t)atomic_load(&lp_switch_target);

		if (atomic_load(&t->state) == target || own_stack_clean(t, sp)) {
			atomic_store(&t->state, target);
			atomic_store(&t->pending, LP_PENDING_NONE);
			lp_agent_kick();
		} else {
			/* It enters the previous implementation: older verdicts are void. */
			atomic_fetch_add(&t->fails, 1);
			atomic_store(&t->pending, LP_PENDING);
		}
	}
	errno = saved_errno;
}
