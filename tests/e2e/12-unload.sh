#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 12-unload: a reverted patch is disabled at once, but its shared object is
# unloaded only when no thread runs its code any more: here a thread is
# parked inside the patch's compute() while the patch is reverted.
. "$(dirname "$0")/lib.sh"

start_target demo
apply park_fix
expect_reply "call compute 5" 500 "patched"
expect_reply block blocked # parked inside the patch's new compute()

revert park_fix
assert_no_patches "after revert"
expect_reply "call compute 5" 22 "new calls run the original again"

mapped() { grep -q "/park_fix.so" "/proc/$PID/maps"; }
mapped || fail "park_fix.so was unloaded while a thread was still inside it"

# The parked thread returns through the patch's code, which must still be there.
expect_reply release "released 100" "the parked thread finished in the patch's code"
not_mapped() { ! mapped; }
wait_until "park_fix.so to be unloaded" not_mapped
expect_reply "call compute 5" 22 "after the unload"
stop_target
