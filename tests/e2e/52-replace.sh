#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 52-replace: atomic replace (the kernel's test-livepatch "atomic replace"
# and klp_add_nops()).  rep_a, rep_b and rep_c change overlapping and
# disjoint functions of demo and of libdemo.so; rep_r, a replace patch,
# changes compute (also rep_a's) and pad_func (also rep_c's) and lacks
# the rest (stacked, cet_func, demo_lib_value).
#   - over the three installed patches, one transition leaves only rep_r's
#     behaviour: the others are gone from status and unloaded, no callback
#     of theirs ran, and the functions no patch changes any more run their
#     original code again, byte for byte;
#   - during its transition rep_r carries a nop for each function it
#     lacks (shown in status, in an object of its own for libdemo.so), and
#     a reverse leaves the replaced patch in charge as before;
#   - reverting rep_r then restores every original.
. "$(dirname "$0")/lib.sh"

RP=$PATCHES/replace
require_built "$RP/rep_a.so" "$RP/rep_b.so" "$RP/rep_c.so" "$RP/rep_r.so"

# values C S E P L: compute, stacked, cet_func, pad_func and
# demo_lib_value of 5 must be these.
values() {
	expect_reply "call compute 5" "$1" "compute"
	expect_reply "call stacked 5" "$2" "stacked"
	expect_reply "call cet_func 5" "$3" "cet_func"
	expect_reply "call pad_func 5" "$4" "pad_func"
	expect_reply "call demo_lib_value 5" "$5" "demo_lib_value"
}
ORIGINAL="22 98 66 87 58"

unmapped() {
	! maps_file "$1"
}

# --- one replace over three patches -------------------------------------------
start_target demo
# shellcheck disable=SC2086
values $ORIGINAL
apply replace/rep_a
apply replace/rep_b
apply replace/rep_c
values 1005 2105 2205 3305 3405
assert_patches rep_a rep_b rep_c

apply replace/rep_r
values 9005 98 66 9305 58
assert_patches rep_r
jq_true '.patches[0].replace and [.patches[0].objects[].name] == [null] and
	[.patches[0].objects[0].functions[] | .name] == ["compute", "pad_func"] and
	all(.patches[0].objects[0].functions[]; (.nop | not) and .patched)' \
	"rep_r alone, without nops once its transition completed"
for f in stacked cet_func; do
	same_bytes "$TARGETS/demo" "$f"
done
same_bytes "$(mapped_path libdemo.so)" demo_lib_value
for p in rep_a rep_b rep_c; do
	wait_until "$p.so to be unloaded" unmapped "$p.so"
done
log_is "$(enable_transcript rep_a)
$(enable_transcript rep_b)
$(enable_transcript rep_c)
$(enable_transcript rep_r)"

revert rep_r
# shellcheck disable=SC2086
values $ORIGINAL
assert_no_patches "after reverting rep_r"
for f in compute pad_func; do
	same_bytes "$TARGETS/demo" "$f"
done
stop_target

# --- nops during the transition; a reverse keeps the replaced patch ---------------
start_target demo
apply replace/rep_c
status_json # every runtime thread exists before the parked one
expect_reply block blocked # inside the original compute(), which rep_r replaces
lp_ok apply --no-wait "$PID" "$RP/rep_r.so"
[ "$LP_OUT" = "patch 'rep_r' enabled (2 functions in 1 object); transition in progress" ] ||
	fail "apply --no-wait of rep_r printed '$LP_OUT'"
status_json
jq_true '.transition.patch == "rep_r" and [.patches[].name] == ["rep_c", "rep_r"]' \
	"rep_r in transition over rep_c"
jq_true '.patches[1].objects[] | select(.name == "libdemo.so") |
	.loaded and .patched and (.functions | length == 1) and
	(.functions[0] | .name == "demo_lib_value" and .nop and .new_addr == null and
	.patched and .transition)' "a nop for demo_lib_value, in an object of its own"
# The main thread switches: rep_r's pad_func, and the nop's original.
expect_reply "call pad_func 5" 9305 "switched: rep_r's pad_func"
expect_reply "call demo_lib_value 5" 58 "switched: the nop runs the original"

revert rep_r
assert_patches rep_c
values 22 98 66 3305 3405
expect_reply release "released 10" "the parked thread ran the original compute()"
patch_log_is rep_r "lpatch: enabling patch 'rep_r'
lpatch: 'rep_r': initializing patching transition
lpatch: 'rep_r': starting patching transition
lpatch: 'rep_r': reversing transition from patching to unpatching
lpatch: 'rep_r': starting unpatching transition
lpatch: 'rep_r': completing unpatching transition
lpatch: 'rep_r': unpatching complete"

# Without a thread in the way, the replace completes and rep_c goes.
apply replace/rep_r
assert_patches rep_r
values 9005 98 66 9305 58
revert rep_r
# shellcheck disable=SC2086
values $ORIGINAL
stop_target
