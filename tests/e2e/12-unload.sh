#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 12-unload: a patch is disabled only once no thread runs its code any more,
# and its shared object unloaded after that: here a thread is parked inside
# the patch's compute() while the patch is reverted.
. "$(dirname "$0")/lib.sh"

start_target demo
apply park_fix
expect_reply "call compute 5" 500 "patched"
expect_reply block blocked # parked inside the patch's new compute()

lp_ok revert --no-wait "$PID" park_fix
expect_reply "call compute 5" 22 "new calls run the original again"
status_json
jq_true '.transition.patch == "park_fix" and .transition.target == "unpatched"' \
	"the thread inside the patch holds the unpatching transition"

mapped() { grep -q "/park_fix.so" "/proc/$PID/maps"; }
mapped || fail "park_fix.so was unloaded while a thread was still inside it"

# The parked thread returns through the patch's code, which must still be there.
expect_reply release "released 100" "the parked thread finished in the patch's code"
wait_until "the transition to complete" no_transition
assert_no_patches "after revert"
not_mapped() { ! mapped; }
wait_until "park_fix.so to be unloaded" not_mapped
expect_reply "call compute 5" 22 "after the unload"
stop_target
