#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 40-stacking: three patches of one function.  The top of the stack wins;
# reverting the middle one keeps the top; reverting the top exposes the
# bottom; reverting all restores the original, byte for byte.
. "$(dirname "$0")/lib.sh"

start_target demo
expect_reply "call stacked 5" 98 "original"

apply stack_p1
expect_reply "call stacked 5" 10005 "p1 applied"
apply stack_p2
expect_reply "call stacked 5" 20005 "p2 on top of p1"
apply stack_p3
expect_reply "call stacked 5" 30005 "p3 on top"
assert_patches stack_p1 stack_p2 stack_p3
jq_true '[.patches[].stack_order] == [1, 2, 3]' "stack_order 1, 2, 3"

revert stack_p2
assert_patches stack_p1 stack_p3
jq_true '[.patches[].stack_order] == [1, 2]' "stack_order after removing the middle"
expect_reply "call stacked 5" 30005 "p3 still on top after reverting p2"

revert stack_p3
assert_patches stack_p1
expect_reply "call stacked 5" 10005 "p1 after reverting p3"

revert stack_p1
assert_no_patches
expect_reply "call stacked 5" 98 "original after reverting all"
same_bytes "$TARGETS/demo" stacked
stop_target
