#!/bin/bash
# SPDX-License-Identifier: MIT
# test-timeout: 900
#
# 81-inject-threads: injection into a process with 200 threads
# (stress/many started without the runtime, patch stress/many_fix): 50 in
# pthread_cond_wait(), 50 in a raw FUTEX_WAIT, 100 in epoll_wait() on an
# eventfd that never fires, and two busy threads calling manyval().
#   - the first apply injects the runtime and registers every thread that
#     ran before it: reading their registers interrupts each one's wait for
#     a moment, and none of them sees EINTR or returns without a wake-up;
#   - the patch applies and reverts, the busy threads see the right results;
#   - with a thread parked in manyval() (created after the injection, so
#     caught by the redirected pthread_create()), the transition waits for
#     that thread alone: every other thread, each of the 200 among them, is
#     counted and switched, none is unknown to the runtime.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/many.bash"

NTHREADS=${LP_INJECT_THREADS:-200}
WAIT=600
FIX=many_fix
FIXSO=$PATCHES/stress/$FIX.so
OLD5=16 NEW5=17 # manyval(5)

require_built "$FIXSO"
start_plain stress/many
start_many "$NTHREADS"
nthreads=$(task_ids | wc -l)
log "$nthreads threads"

# quiet_waiters WHY: no wait ended with EINTR or without a wake-up, and no
# busy thread saw a wrong result.
quiet_waiters() {
	expect_reply eintr "eintr 0 spurious 0" "$1: waits interrupted"
	cmd busy
	[[ $REPLY =~ ^calls\ ([0-9]+)\ bad\ 0$ ]] || fail "$1: busy threads: $REPLY"
}

results old "before"
results any
lp apply --verbose --timeout $WAIT "$PID" "$FIXSO"
[ "$LP_RC" -eq 0 ] || fail "apply exited $LP_RC: $LP_ERR"
log "$LP_ERR"
grep -Eq "^lpatch: injected the runtime into $PID " <<<"$LP_ERR" ||
	fail "apply did not inject the runtime: $LP_ERR"
registered=$(sed -n 's/^lpatch: registered \([0-9]*\) threads\{0,1\} that ran before the runtime came$/\1/p' <<<"$LP_ERR" |
	awk '{ n += $1 } END { print n + 0 }')
# Every thread but the borrowed one, which registers itself.
[ "$registered" -ge "$NTHREADS" ] ||
	fail "only $registered of the $nthreads threads were registered: $LP_ERR"
results new "applied"
assert_patches "$FIX"
expect_reply "call 5" $NEW5 "applied"
quiet_waiters "applied"

results any
lp_ok revert --timeout $WAIT "$PID" "$FIX"
results old "reverted"
assert_no_patches "reverted"
expect_reply "call 5" $OLD5 "reverted"
quiet_waiters "reverted"

# A second apply finds every thread known: it registers none.
expect_reply park "parked O"
results any
lp apply --verbose --no-wait "$PID" "$FIXSO"
[ "$LP_RC" -eq 0 ] || fail "apply --no-wait exited $LP_RC: $LP_ERR"
! grep -q "injected the runtime\|registered" <<<"$LP_ERR" ||
	fail "the second apply injected or registered threads again: $LP_ERR"
wait_until "every thread but the parked one to switch" only_parked_pending
many_true ".transition.threads_total >= $nthreads and
	all(.threads[]; .state != \"unknown\")" "every thread known to the runtime"
many_true '[.threads[] | select(.name | test("^(cwait|fwait|ewait|busy)"))] |
	length >= '"$NTHREADS"' and all(.[]; .state == "patched" and (.pending | not))' \
	"every waiter and busy thread switched"
many_true '.threads[] | select(.name == "parked") |
	.state == "unpatched" and .blocking_function == "manyval"' \
	"the parked thread is the one left, sleeping on manyval"
expect_reply release "released 4" "the parked thread finished the original"
wait_until "the transition to complete" settled
results new "applied, after the parked thread"
quiet_waiters "applied, after the parked thread"

results any
lp_ok revert --timeout $WAIT "$PID" "$FIX"
results old "reverted again"
assert_no_patches "reverted again"
quiet_waiters "reverted again"
stop_target
