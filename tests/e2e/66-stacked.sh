#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 66-stacked: the consistency model with a stack of patches (seed 003).
# When a second patch of compute() is enabled, what a thread must not be
# running is the version it replaces, the first patch's compute(), not
# the original.  A thread parked inside park_p1's compute() holds
# compute_p2's transition back, is reported as sleeping on "compute", and
# while it is pending a call of compute() it makes still reaches park_p1:
# the version below the patch in transition, not the original.
. "$(dirname "$0")/lib.sh"

require_built "$PATCHES/park_p1.so" "$PATCHES/compute_p2.so"

start_target demo
apply park_p1
assert_patches park_p1
expect_reply "call compute 5" 500 "park_p1"

before=$(task_ids)
expect_reply block blocked # inside park_p1's compute(), in read()
new_thread "$before"
parked=$NEW_TID

lp_ok apply --no-wait "$PID" "$PATCHES/compute_p2.so"
[ "$LP_OUT" = "patch 'compute_p2' enabled (1 function in 1 object); transition in progress" ] ||
	fail "apply --no-wait printed '$LP_OUT'"

# The main thread switches to the new top of the stack.
expect_reply "call compute 5" 5002 "main thread, during compute_p2's transition"

only_parked_pending() {
	status_has --threads "[.threads[] | select(.pending) | .tid] == [$parked]"
}
wait_until "thread $parked to be the only one pending" only_parked_pending
jq_true '.transition.patch == "compute_p2" and .transition.target == "patched"
	and .transition.threads_pending == 1' "compute_p2 in a patching transition"
jq_true '[.patches[].name] == ["park_p1", "compute_p2"]' "both patches listed"
jq_true '.patches[0] | .enabled and (.transition | not)' "park_p1 settled"
jq_true '.patches[1] | .enabled and .transition' "compute_p2 in transition"
# The frame on its stack is park_p1's new_compute; the status names the
# function that patch replaces.
jq_true ".threads[] | select(.tid == $parked) | .state == \"unpatched\" and .pending
	and .blocking_function == \"compute\"" "the parked thread is held back by compute"
jq_true ".threads[] | select(.tid == $PID) | .state == \"patched\" and (.pending | not)" \
	"the main thread has switched"

# Released, the parked thread returns into park_p1's compute(), which calls
# compute(1) through the original's entry.  The thread is still pending
# (park_p1's compute() is on its stack), so that call dispatches to the
# version below compute_p2: park_p1 again, 100, plus park_p1's 1.  The
# original would give 11, compute_p2 1003.
expect_reply release "released 101" "the unswitched thread stayed on park_p1"
wait_until "the transition to complete" no_transition
assert_patches park_p1 compute_p2
expect_reply "call compute 5" 5002 "compute_p2 on top"

# Unstack: each revert exposes the version below.
revert compute_p2
assert_patches park_p1
expect_reply "call compute 5" 500 "park_p1 again"
revert park_p1
assert_no_patches "after reverting both"
expect_reply "call compute 5" 22 "the original again"
same_bytes "$TARGETS/demo" compute

# Every transition completed by itself (compute_p2's once the parked thread
# had left), in order.
log_is "$(enable_transcript park_p1)
$(enable_transcript compute_p2)
$(disable_transcript compute_p2)
$(disable_transcript park_p1)"
stop_target
