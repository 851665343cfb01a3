#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 47-coming-fail: a library that cannot take one of its patches as it
# loads takes none of them, runs whole and unpatched, and says why.
#  (a) coming_a, then coming_fail, whose pre_patch callback refuses
#      libcoming.so: coming_a, applied to the library first, is undone;
#      both objects report the failure in status; the process goes on, and
#      once coming_fail is gone the library is patched again when it loads.
#  (b) coming_short replaces two functions of the library, one too short
#      to patch: neither is redirected.
#  (c) an apply that waits for its transition (held open by a thread
#      inside the main program's hold()) while the library loads and
#      refuses the patch: apply exits non-zero and names the failure.
. "$(dirname "$0")/lib.sh"

LIB=$TARGETS/coming/libcoming.so
CP=$PATCHES/coming
require_built "$LIB" "$CP/coming_a.so" "$CP/coming_fail.so" "$CP/coming_short.so"

lib_object() {
	printf '(.patches[] | select(.name == "%s") | .objects[] |
		select(.name == "libcoming.so"))' "$1"
}

# --- (a) a pre_patch callback refuses the library ---------------------------
start_target coming/coming "$LIB"
apply coming/coming_a
apply coming/coming_fail
expect_reply "call 5" "error not loaded"
expect_reply load "loaded 21 21" "the refused library runs unpatched, constructor included"
expect_reply "call 5" 11 "still unpatched"
status_json
jq_true "$(lib_object coming_fail) | .loaded and (.patched | not) and .path == null and
	(.error | contains(\"pre-patch callback failed\"))" "coming_fail's failure in status"
jq_true "$(lib_object coming_a) | .loaded and (.patched | not) and
	(.error | contains(\"patch 'coming_fail' failed\"))" "coming_a undone, and why"
jq_true '[.patches[].enabled] == [true, true]' "both patches stay enabled"
jq_true '.patches[] | select(.name == "coming_fail") | .objects[] | select(.name == null) |
	.patched and .error == null' "the main program stays patched by coming_fail"
lp_ok log "$PID"
[ "$(sed -n '/loading library/,$p' <<<"$LP_OUT")" = "lpatch: applying patch 'coming_a' to loading library 'libcoming.so'
lpatch: applying patch 'coming_fail' to loading library 'libcoming.so'
coming_fail: pre_patch_callback: libcoming.so: refused
lpatch: pre-patch callback failed for object 'libcoming.so'
lpatch: patch 'coming_fail' failed for library 'libcoming.so', which stays unpatched
lpatch: reverting patch 'coming_a' on library 'libcoming.so'" ] ||
	fail "unexpected log of the refused load: $LP_OUT"

# Unloading the unpatched library undoes nothing; without coming_fail the
# next load is patched again.
expect_reply unload unloaded
revert coming_fail
expect_reply load "loaded 1010 1010" "patched again without coming_fail"
status_json
jq_true "$(lib_object coming_a) | .loaded and .patched and .error == null" \
	"coming_a patched again, no error left"
stop_target

# --- (b) a function that cannot be patched: all or nothing ------------------
start_target coming/coming "$LIB"
apply coming/coming_short
expect_reply load "loaded 21 21" "neither function of coming_short redirected"
status_json
jq_true "$(lib_object coming_short) | (.patched | not) and
	(.error | contains(\"coming_short\") and contains(\"too short\")) and
	all(.functions[]; .patched | not)" "coming_short refused as a whole"
same_bytes "$LIB" coming_value
same_bytes "$LIB" coming_short
expect_reply unload unloaded
stop_target

# --- (c) a waiting apply learns of the failure --------------------------------
start_target coming/coming "$LIB"
status_json # every runtime thread exists before the parked one
expect_reply block blocked
"$LPATCH" apply --timeout 600 "$PID" "$CP/coming_fail.so" >"$TMP/apply.out" 2>"$TMP/apply.err" &
bg=$!
LP_PIDS+=("$bg")
in_transition() {
	status_has '.transition.patch == "coming_fail"'
}
wait_until "coming_fail's transition to start" in_transition
expect_reply load "loaded 21 21" "the library refuses coming_fail during its transition"
expect_reply release "released 10" "the parked thread finished the original hold()"
wait "$bg"
rc=$?
err=$(cat "$TMP/apply.err")
[ "$rc" -eq 1 ] || fail "apply exited $rc, expected 1: $err"
[ "$(wc -l <"$TMP/apply.err")" -eq 1 ] || fail "apply: expected one stderr line: $err"
[[ $err == "lpatch: "*"patch 'coming_fail' enabled, but a library that loaded meanwhile is not patched: pre-patch callback failed for object 'libcoming.so'"* ]] ||
	fail "the waiting apply said: $err"
assert_patches coming_fail
expect_reply "call 5" 11 "the library stays unpatched"
stop_target
