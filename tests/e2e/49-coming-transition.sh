#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 49-coming-transition: a library that loads or unloads while its patch is
# in transition (the kernel's test-callbacks "module loaded/unloaded during
# a transition").  coming_cb replaces the main program's hold() and
# libcoming.so's coming_value(), and logs every callback; a thread parked
# inside hold() holds its transitions open.
#   - patching: the library loads meanwhile and is patched at once, in
#     transition like the rest of the patch; its post_patch callback waits
#     for the transition to complete, as the main program's does;
#   - unpatching: the library unloads meanwhile and is unpatched at once,
#     without its pre_unpatch callback (the transition's pre_unpatch
#     callbacks ran when it started) but with its post_unpatch.
. "$(dirname "$0")/lib.sh"

LIB=$TARGETS/coming/libcoming.so
CP=$PATCHES/coming
require_built "$LIB" "$CP/coming_cb.so"

lib_object() {
	printf '(.patches[] | select(.name == "coming_cb") | .objects[] |
		select(.name == "libcoming.so"))'
}

in_transition() {
	status_has ".transition.patch == \"coming_cb\" and .transition.target == \"$1\""
}

start_target coming/coming "$LIB"
status_json # every runtime thread exists before the parked one

# --- patching -------------------------------------------------------------------
expect_reply block blocked # inside the original hold()
lp_ok apply --no-wait "$PID" "$CP/coming_cb.so"
in_transition patched || fail "coming_cb is not in transition"
# The main thread runs the new code as soon as it enters it.
expect_reply load "loaded 3010 3010" "loaded during the patching transition"
status_json
jq_true "$(lib_object) | .loaded and .patched and all(.functions[]; .patched and .transition)" \
	"the library is patched, in transition"
lp_ok log "$PID"
grep -q post_patch_callback <<<"$LP_OUT" && fail "post_patch ran before the transition completed"
expect_reply release "released 10" "the parked thread finished the original hold()"
wait_until "the patching transition to complete" no_transition
assert_patches coming_cb
expect_reply "call 5" 3005 "patched"

# --- unpatching -------------------------------------------------------------------
expect_reply block blocked # inside coming_cb's hold()
lp_ok revert --no-wait "$PID" coming_cb
in_transition unpatched || fail "coming_cb is not being disabled"
expect_reply unload unloaded
status_json
jq_true "$(lib_object) | (.loaded | not) and (.patched | not)" "unloaded during the transition"
expect_reply release "released 309" "the parked thread finished coming_cb's hold()"
wait_until "the unpatching transition to complete" no_transition
assert_no_patches "after the disable"

log_is "lpatch: enabling patch 'coming_cb'
lpatch: 'coming_cb': initializing patching transition
coming_cb: pre_patch_callback: main
lpatch: 'coming_cb': starting patching transition
lpatch: applying patch 'coming_cb' to loading library 'libcoming.so'
coming_cb: pre_patch_callback: libcoming.so
lpatch: 'coming_cb': completing patching transition
coming_cb: post_patch_callback: main
coming_cb: post_patch_callback: libcoming.so
lpatch: 'coming_cb': patching complete
lpatch: 'coming_cb': initializing unpatching transition
coming_cb: pre_unpatch_callback: main
coming_cb: pre_unpatch_callback: libcoming.so
lpatch: 'coming_cb': starting unpatching transition
lpatch: reverting patch 'coming_cb' on unloading library 'libcoming.so'
coming_cb: post_unpatch_callback: libcoming.so
lpatch: 'coming_cb': completing unpatching transition
coming_cb: post_unpatch_callback: main
lpatch: 'coming_cb': unpatching complete"
expect_reply load "loaded 21 21" "loaded again after the disable: unpatched"
stop_target
