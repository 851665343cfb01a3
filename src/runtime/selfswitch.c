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
 * it takes no lock, allocates nothing, calls nothing that could (system
 * calls aside), and reads only its own stack and data the agent keeps still
 * while it runs: the forbidden ranges and the target are changed only when
 * no thread holds its pending byte in LP_PENDING_SELF.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>

#include "runtime.h"

/*
 * A word of a stack that may be a return address into forbidden code: the
 * call before it lies in that code.  So a pointer to a function's first
 * byte does not count, and a return address just past a call that ends a
 * function does.
 */
static bool suspect(const struct lp_forbidden *f, uintptr_t w)
{
	return lp_forbidden_find(f, w - 1) || lp_tramp_contains(w);
}

/*
 * A conservative check: the first word in [@from, @end) that points into
 * forbidden code, or into a trampoline (a frame interrupted between a
 * function's entry and its implementation); NULL when there is none.  A
 * return address is always a word of the stack, so none means clean.
 */
__attribute__((no_sanitize("address"))) const uintptr_t *
lp_stack_words_find(const struct lp_forbidden *f, const uintptr_t *from, const uintptr_t *end)
{
	for (const volatile uintptr_t *p = from; p < end; p++)
		if (suspect(f, *p))
			return (const uintptr_t *)p;
	return NULL;
}

/*
 * The thread's own stack, from the entry of the function being called up.
 * The word that failed the last check is looked at first: while it is still
 * there above the stack pointer, the answer is the same, and a thread that
 * keeps calling functions in transition from deep inside an old one does
 * not scan its whole stack every time.
 */
__attribute__((no_sanitize("address"))) static bool own_stack_clean(struct lp_task *t, uintptr_t sp)
{
	const struct lp_forbidden *f = atomic_load(&lp_switch_forbidden);
	const uintptr_t *bad;

	/* On another stack (sigaltstack, a coroutine) the frames below are out of sight. */
	if (!f || sp < t->stack_lo || sp >= t->stack_hi)
		return false;
	if (t->fail_at >= sp && t->fail_at < t->stack_hi &&
	    suspect(f, *(const volatile uintptr_t *)t->fail_at))
		return false;
	bad = lp_stack_words_find(f, (const uintptr_t *)sp, (const uintptr_t *)t->stack_hi);
	t->fail_at = (uintptr_t)bad;
	return !bad;
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
		default: /* LP_PENDING_NONE: switched already */
			return false;
		}
		p = LP_PENDING;
	}
	return true;
}

/*
 * Signals stay blocked while the thread owns its pending byte: a handler
 * that left the check with siglongjmp() would leave the byte owned for
 * good, and the agent waits for it.
 */
void lp_task_self_switch(uintptr_t sp)
{
	struct lp_task *t = &lp_current;
	int saved_errno = errno;
	sigset_t all, old;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
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
	sigprocmask(SIG_SETMASK, &old, NULL);
	errno = saved_errno;
}
