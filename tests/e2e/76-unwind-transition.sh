#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 76-unwind-transition: pthread_cancel, C++ exceptions and backtrace() keep
# working while a transition is in progress, in both kinds of thread
# (stress/unwind2, patch stress/unwind2_fix):
#   - the main thread, which switches: it runs the new functions while
#     patching and the originals again while unpatching;
#   - a "holder" thread serving the same checks from inside the patched
#     hold(): it cannot switch while hold() is on its stack, so it keeps
#     the transition open and runs the other implementations all along.
# Then, once the transition completed, the same checks again.
#
# The checks (see 55-unwind.sh): a callback's exception propagates through
# call_cb() to the caller's catch; a thread blocked in read() inside
# blocker() is cancelled and its C++ destructors run; backtrace() inside
# bt_probe() shows bt_caller as frame 1 and the thread's outer function
# (main, holder_thread) further out, with no frame of lpatch's own.
. "$(dirname "$0")/lib.sh"

FIX=unwind2_fix
FIXSO=$PATCHES/stress/$FIX.so

require_built "$FIXSO"

# AddressSanitizer aborts on pthread_cancel's unwinding of a C++ target and
# its backtrace() sees no frames, with or without lpatch (55-unwind.sh).
if sanitized stress/unwind2; then
	check_cancel() { log "skipped under AddressSanitizer: cancel ($*)"; }
	check_bt() { log "skipped under AddressSanitizer: bt ($*)"; }
else
	check_cancel() { expect_reply "${1}cancel" "$2" "$3"; }
	check_bt() { expect_reply "${1}bt" "$2" "$3"; }
fi

# checks PREFIX IMPL WHY: the four checks, run by the main thread (PREFIX
# "") or by the holder (PREFIX "h "), must show implementation IMPL ("O"
# original, "P" patched).  The cancellation runs in a thread the checking
# thread starts, whose implementation is CANCEL_IMPL when set (see below).
checks() {
	local p=$1 impl=$2 why=$3 cb bt
	if [ "$impl" = P ]; then
		cb=12 bt=103
	else
		cb=11 bt=3
	fi
	expect_reply "${p}call_cb 5" $cb "$why: call_cb"
	expect_reply "${p}throw 7" "caught 7" "$why: exception through call_cb"
	expect_reply "${p}throw -3" "caught -3" "$why: exception through call_cb"
	check_cancel "$p" "cancelled ${CANCEL_IMPL:-$impl} unwound 1" \
		"$why: cancellation in blocker"
	check_bt "$p" $bt "$why: backtrace in bt_probe"
}

unwind_status() {
	lp_ok status --json --threads "$PID"
	STATUS=$LP_OUT
}

# main_switched STATE: the main thread has switched to STATE.
main_switched() {
	unwind_status
	status_is "any(.threads[]; .tid == $PID and .state == \"$1\" and (.pending | not))"
}

settled() {
	unwind_status
	status_is '.transition == null'
}

# only_holder_pending: every thread has switched but the holder.
only_holder_pending() {
	unwind_status
	status_is '[.threads[] | select(.pending) | .name] == ["holder"]'
}

# held_open TARGET WHY: the transition to TARGET is still in progress,
# held by the holder alone, which sleeps on hold().
held_open() {
	wait_until "$2: every thread but the holder to switch" only_holder_pending
	jq_true ".transition.patch == \"$FIX\" and .transition.target == \"$1\" and
		.transition.threads_pending == 1" "$2: transition to $1 in progress"
	jq_true '.threads[] | select(.name == "holder") | .blocking_function == "hold"' \
		"$2: the holder sleeps on hold"
}

start_target stress/unwind2
checks "" O "before"
expect_reply hold "held O"
checks "h " O "before, in the holder"

# --- patching, held open by the holder inside the original hold() ---------
lp_ok apply --no-wait "$PID" "$FIXSO"
wait_until "the main thread to switch to patched" main_switched patched
held_open patched "patching"
checks "" P "patching, switched thread"
# The holder's cancelled thread inherits its state, unpatched, and its
# pending flag; entering blocker() with a clean stack it switches, so it
# runs the patch's blocker() while the holder runs the originals.
CANCEL_IMPL=P checks "h " O "patching, holder"
held_open patched "patching, after the checks"
expect_reply release "released 11" "the holder finished the original hold()"
wait_until "the patching transition to complete" settled
assert_patches "$FIX"
checks "" P "patched"

# --- unpatching, held open by the holder inside the patch's hold() ---------
expect_reply hold "held P"
checks "h " P "patched, in the holder"
lp_ok revert --no-wait "$PID" "$FIX"
wait_until "the main thread to switch to unpatched" main_switched unpatched
held_open unpatched "unpatching"
checks "" O "unpatching, switched thread"
CANCEL_IMPL=O checks "h " P "unpatching, holder"
held_open unpatched "unpatching, after the checks"
expect_reply release "released 21" "the holder finished the patch's hold()"
wait_until "the unpatching transition to complete" settled
assert_no_patches "reverted"
checks "" O "reverted"
expect_reply hold "held O"
checks "h " O "reverted, in the holder"
expect_reply release "released 11"
for f in call_cb blocker bt_probe hold; do
	same_bytes "$TARGETS/stress/unwind2" "$f"
done
stop_target
