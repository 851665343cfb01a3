#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 30-prologues: functions whose entry is special: cet_func starts with
# endbr64 (built with -fcf-protection=full), pad_func with five bytes of
# nops (-fpatchable-function-entry=5).  Patch, check, revert, compare bytes.
. "$(dirname "$0")/lib.sh"

start_target demo

# The build must have produced what this test is about.
first_bytes() {
	objdump -d --start-address="$(sym_addr_file "$1")" "$TARGETS/demo" |
		awk '/^ +[0-9a-f]+:/ { print; if (++n == 5) exit }'
}
sym_addr_file() {
	nm "$TARGETS/demo" | awk -v s="$1" '$3 == s { print "0x" $1; exit }'
}
first_bytes cet_func | head -n 1 | grep -q endbr64 ||
	fail "cet_func does not start with endbr64: $(first_bytes cet_func)"
[ "$(first_bytes pad_func | grep -c 'nop$')" -eq 5 ] ||
	fail "pad_func does not start with 5 one-byte nops: $(first_bytes pad_func)"

# patch_cycle PATCH FUNCTION OLD NEW
patch_cycle() {
	expect_reply "call $2 5" "$3" "$2 before"
	apply "$1"
	assert_patches "$1"
	status_json
	check_old_addr '.patches[0].objects[0].functions[0].old_addr' "$TARGETS/demo" "$2"
	expect_reply "call $2 5" "$4" "$2 patched"
	revert "$1"
	assert_no_patches
	expect_reply "call $2 5" "$3" "$2 reverted"
	same_bytes "$TARGETS/demo" "$2"
}
patch_cycle cet_fix cet_func 66 4005
patch_cycle pad_fix pad_func 87 5005
stop_target
