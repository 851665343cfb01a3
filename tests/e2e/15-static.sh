#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 15-static: patch a static function (only .symtab has it), and one of two
# static functions of the same name chosen by old_sympos 1 or 2; old_sympos
# 0 is refused as ambiguous and changes nothing.
. "$(dirname "$0")/lib.sh"

start_target demo

# secret_scale(x) = x * x + 1 is static; use_secret(x) adds 1.
expect_reply "call use_secret 5" 27 "before"
apply static_fix
assert_patches static_fix
expect_reply "call use_secret 5" 7006 "static secret_scale patched"
revert static_fix
assert_no_patches
expect_reply "call use_secret 5" 27 "reverted"
same_bytes "$TARGETS/demo" secret_scale

# Two static "helper"s: statics1.c's (x * x + 10, reached by path1) comes
# first in the symbol table, statics2.c's (x * x + 20, path2) second.
check_paths() {
	expect_reply "call path1 5" "$1" "$3"
	expect_reply "call path2 5" "$2" "$3"
}
check_paths 35 45 "before"

lp_fails apply "$PID" "$PATCHES/helper_pos0.so"
assert_no_patches "after the ambiguous patch was refused"
check_paths 35 45 "after the ambiguous patch was refused"
lp_ok log "$PID"
grep -q "^lpatch: 'helper_pos0': .*ambiguous" <<<"$LP_OUT" ||
	fail "the log does not say why helper_pos0 was refused: $LP_OUT"

apply helper_pos1
status_json
jq_true '.patches[0].objects[0].functions[0] | .name == "helper" and .sympos == 1'
check_old_addr '.patches[0].objects[0].functions[0].old_addr' "$TARGETS/demo" helper 1
check_paths 505 45 "helper_pos1 applied"
revert helper_pos1
check_paths 35 45 "helper_pos1 reverted"

apply helper_pos2
status_json
jq_true '.patches[0].objects[0].functions[0] | .name == "helper" and .sympos == 2'
check_old_addr '.patches[0].objects[0].functions[0].old_addr' "$TARGETS/demo" helper 2
check_paths 35 505 "helper_pos2 applied"
revert helper_pos2
check_paths 35 45 "helper_pos2 reverted"

assert_no_patches
same_bytes "$TARGETS/demo" helper 1
same_bytes "$TARGETS/demo" helper 2
stop_target
