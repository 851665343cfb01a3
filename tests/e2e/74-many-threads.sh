#!/bin/bash
# SPDX-License-Identifier: MIT
# test-timeout: 900
#
# 74-many-threads: one transition of a process with a thousand threads
# (stress/many, patch stress/many_fix): 250 in pthread_cond_wait(), 250 in
# a raw FUTEX_WAIT, 500 in epoll_wait() on an eventfd that never fires, and
# two busy threads calling manyval() in a loop.
#   - apply and revert complete (their times are logged, not judged);
#   - the waiters are checked where they sleep, from /proc: none of them is
#     woken (its context-switch count stays put) and none sees EINTR, which
#     epoll_wait() returns after any signal handler;
#   - once apply returned, every call of the busy threads gets the patch,
#     once revert returned the original again;
#   - with a thread parked inside manyval() the transition stays in
#     progress: status counts all the threads, and names the parked one as
#     the only thread left, sleeping on manyval; once it returns the
#     transition completes and every thread is idle.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/many.bash"

NTHREADS=${LP_MANY_THREADS:-1000}
# apply and revert signal the threads still pending after a quarter of
# their timeout (klp_send_signals): that would wake the waiters, so give
# them all the time a slow machine may need to check a thousand threads.
WAIT=600
FIX=many_fix
FIXSO=$PATCHES/stress/$FIX.so
OLD5=16 NEW5=17 # manyval(5)

require_built "$FIXSO"
start_target stress/many
start_many "$NTHREADS"
nthreads=$(find "/proc/$PID/task" -mindepth 1 -maxdepth 1 | wc -l)
log "$nthreads threads"
[ "$nthreads" -gt "$NTHREADS" ] || fail "only $nthreads threads"

# ms_since T0: milliseconds since T0 (date +%s%N), for the log only.
ms_since() {
	echo $((($(date +%s%N) - $1) / 1000000))
}

# quiet_waiters WHY: no waiter was woken since "mark", none saw EINTR or
# returned without a wake-up, and the busy threads saw no wrong result.
quiet_waiters() {
	expect_reply woken "woken 0" "$1: waiters woken up (a signal?)"
	expect_reply eintr "eintr 0 spurious 0" "$1: waits interrupted"
	cmd busy
	[[ $REPLY =~ ^calls\ ([0-9]+)\ bad\ 0$ ]] || fail "$1: busy threads: $REPLY"
	log "$1: busy threads: $REPLY"
}

all_idle() {
	many_status
	many_true "(.threads | length) >= $NTHREADS and .transition == null and
		all(.threads[]; .state == \"idle\" and (.pending | not))" \
		"$1: every thread listed and idle"
}

expect_reply mark marked
results old "before"
all_idle "before"

# --- apply and revert, timed ----------------------------------------------
results any
t0=$(date +%s%N)
lp_ok apply --timeout $WAIT "$PID" "$FIXSO"
log "apply with $nthreads threads: $(ms_since "$t0") ms"
results new "applied"
assert_patches "$FIX"
all_idle "applied"
expect_reply "call 5" $NEW5 "applied"
quiet_waiters "applied"

results any
t0=$(date +%s%N)
lp_ok revert --timeout $WAIT "$PID" "$FIX"
log "revert with $nthreads threads: $(ms_since "$t0") ms"
results old "reverted"
assert_no_patches "reverted"
expect_reply "call 5" $OLD5 "reverted"
all_idle "reverted"
quiet_waiters "reverted"

# --- a transition held open by one thread ---------------------------------
expect_reply park "parked O"
results any
t0=$(date +%s%N)
lp_ok apply --no-wait "$PID" "$FIXSO"
many_status
many_true ".transition.patch == \"$FIX\" and .transition.target == \"patched\"
	and .transition.threads_total >= $NTHREADS" "in transition, counting every thread"
wait_until "every thread but the parked one to switch" only_parked_pending
log "all but one of $nthreads threads switched after $(ms_since "$t0") ms (polled)"
many_true ".transition.threads_total >= $NTHREADS and
	(.threads | length) >= $NTHREADS" "every thread counted and listed"
many_true '.threads[] | select(.name == "parked") |
	.state == "unpatched" and .blocking_function == "manyval"' \
	"the parked thread is the one left, sleeping on manyval"
many_true '[.threads[] | select(.name | test("^(cwait|fwait|ewait|busy)"))] |
	length >= '"$NTHREADS"' and all(.[]; .state == "patched" and (.pending | not))' \
	"every waiter and busy thread switched"
expect_reply release "released 4" "the parked thread finished the original"
wait_until "the transition to complete" settled
results new "applied, after the parked thread"
assert_patches "$FIX"
all_idle "applied, after the parked thread"
quiet_waiters "applied, after the parked thread"

results any
lp_ok revert --timeout $WAIT "$PID" "$FIX"
results old "reverted again"
assert_no_patches "reverted again"
quiet_waiters "reverted again"
stop_target
