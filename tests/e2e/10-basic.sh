#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 10-basic: patch a function of a PIE and of a non-PIE main program.
# Behaviour before, while a thread is inside the old function, after, and
# once reverted; then the function's bytes equal the file's again.
. "$(dirname "$0")/lib.sh"

# --- PIE ------------------------------------------------------------------
start_target demo
expect_reply "call compute 5" 22 "before the patch"

# A thread already inside the old compute() keeps the old code until it
# returns; every other thread switches, and the transition ends with it.
expect_reply block blocked
apply fix --no-wait
expect_reply "call compute 5" 500 "patched, while a thread is inside the old code"
expect_reply "call compute 0" 0
status_json
jq_true '.transition.patch == "fix"' "the parked thread holds the transition"
expect_reply release "released 10" "the parked thread finished the old code"
wait_until "the transition to complete" no_transition
assert_patches fix
expect_reply "call compute 5" 500 "patched"

revert fix
assert_no_patches "after revert"
expect_reply "call compute 5" 22 "after revert"
same_bytes "$TARGETS/demo" compute
stop_target

# --- non-PIE --------------------------------------------------------------
start_target demo-nopie
expect_reply "call compute 5" 22 "non-PIE, before the patch"
apply fix
assert_patches fix
status_json
# The link-time address: a non-PIE has no load bias.
check_old_addr '.patches[0].objects[0].functions[0].old_addr' \
	"$TARGETS/demo-nopie" compute
expect_reply "call compute 5" 500 "non-PIE, patched"
revert fix
assert_no_patches "non-PIE, after revert"
expect_reply "call compute 5" 22 "non-PIE, after revert"
same_bytes "$TARGETS/demo-nopie" compute
stop_target
