#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 46-coming: patches for a library the process loads after them (the
# kernel's "module loaded after the livepatch").  coming/coming loads and
# unloads libcoming.so, whose constructor calls the patched
# coming_value(10) (2x + 1; coming_a: 1000 + x, coming_b: 2000 + x,
# coming_cb: 3000 + x with every callback logging itself).
#   - a patch applied before the library loads shows the object not
#     loaded; once dlopen() returns, the constructor already got the new
#     version, and a second such patch ends on top (enable order), also
#     after the library is unloaded and loaded again;
#   - reverting each uncovers the one below, then the original, with the
#     library's code as in its file;
#   - the callbacks run in the kernel's order when the library loads,
#     unloads and loads again (exact event-log transcript);
#   - the same with a runtime that came by injection into a process started
#     without it: the loader hook works from the injected agent as well;
#     and a library loaded before the injection, by dlopen() or as a
#     dependency, runs its going callbacks before it is unmapped;
#   - a copy loaded in another link-map namespace (dlmopen) is reported,
#     not patched.
. "$(dirname "$0")/lib.sh"

LIB=$TARGETS/coming/libcoming.so
CP=$PATCHES/coming
require_built "$LIB" "$CP/coming_a.so" "$CP/coming_b.so" "$CP/coming_cb.so"

# lib_object PATCH: the libcoming.so object of PATCH in STATUS.
lib_object() {
	printf '(.patches[] | select(.name == "%s") | .objects[] |
		select(.name == "libcoming.so"))' "$1"
}

# coming_cb's transcript as libcoming.so loads, and as it unloads.
CB_COMING="lpatch: applying patch 'coming_cb' to loading library 'libcoming.so'
coming_cb: pre_patch_callback: libcoming.so
coming_cb: post_patch_callback: libcoming.so"
CB_GOING="coming_cb: pre_unpatch_callback: libcoming.so
lpatch: reverting patch 'coming_cb' on unloading library 'libcoming.so'
coming_cb: post_unpatch_callback: libcoming.so"

# --- two patches, applied before the library loads ------------------------
start_target coming/coming "$LIB"
lp_ok apply "$PID" "$CP/coming_a.so"
[ "$LP_OUT" = "patch 'coming_a' enabled (0 functions in 0 objects; 1 not loaded yet)" ] ||
	fail "apply before the load printed '$LP_OUT'"
status_json
jq_true "$(lib_object coming_a) | (.loaded | not) and (.patched | not) and .path == null
	and .error == null and (.functions[0] | .old_addr == null and (.patched | not))" \
	"coming_a waits for libcoming.so"

expect_reply load "loaded 1010 1010" "the constructor ran coming_a's version"
status_json
jq_true "$(lib_object coming_a) | .loaded and .patched and .error == null and
	(.path | endswith(\"/libcoming.so\"))" "libcoming.so patched by coming_a"
check_old_addr "$(lib_object coming_a) | .functions[0].old_addr" "$LIB" coming_value

lp_ok apply "$PID" "$CP/coming_b.so"
[ "$LP_OUT" = "patch 'coming_b' enabled (1 function in 1 object)" ] ||
	fail "apply with the library loaded printed '$LP_OUT'"
expect_reply "call 5" 2005 "coming_b on top"
expect_reply unload unloaded
status_json
jq_true "[$(lib_object coming_a), $(lib_object coming_b)] |
	all(.[]; (.loaded | not) and (.patched | not))" "unloaded: nothing patched"
expect_reply load "loaded 2010 2010" "loaded again: both, coming_b on top"
assert_patches coming_a coming_b
jq_true "[$(lib_object coming_a), $(lib_object coming_b)] | all(.[]; .loaded and .patched)" \
	"loaded again: both patched"

revert coming_b
expect_reply "call 5" 1005 "coming_b reverted: coming_a again"
revert coming_a
expect_reply "call 5" 11 "both reverted: the original"
same_bytes "$LIB" coming_value
expect_reply unload unloaded
log_is "$(enable_transcript coming_a)
lpatch: applying patch 'coming_a' to loading library 'libcoming.so'
$(enable_transcript coming_b)
lpatch: reverting patch 'coming_a' on unloading library 'libcoming.so'
lpatch: reverting patch 'coming_b' on unloading library 'libcoming.so'
lpatch: applying patch 'coming_a' to loading library 'libcoming.so'
lpatch: applying patch 'coming_b' to loading library 'libcoming.so'
$(disable_transcript coming_b)
$(disable_transcript coming_a)"
stop_target

# --- callbacks: load, unload, load again, disable -----------------------------
start_target coming/coming "$LIB"
lp_ok apply "$PID" "$CP/coming_cb.so"
[ "$LP_OUT" = "patch 'coming_cb' enabled (1 function in 1 object; 1 not loaded yet)" ] ||
	fail "apply of coming_cb printed '$LP_OUT'"
expect_reply "call 5" "error not loaded"
expect_reply load "loaded 3010 3010" "the constructor ran coming_cb's version"
expect_reply unload unloaded
expect_reply load "loaded 3010 3010" "patched again after the reload"
revert coming_cb
expect_reply "call 5" 11 "after the disable"
log_is "lpatch: enabling patch 'coming_cb'
lpatch: 'coming_cb': initializing patching transition
coming_cb: pre_patch_callback: main
lpatch: 'coming_cb': starting patching transition
lpatch: 'coming_cb': completing patching transition
coming_cb: post_patch_callback: main
lpatch: 'coming_cb': patching complete
$CB_COMING
$CB_GOING
$CB_COMING
lpatch: 'coming_cb': initializing unpatching transition
coming_cb: pre_unpatch_callback: main
coming_cb: pre_unpatch_callback: libcoming.so
lpatch: 'coming_cb': starting unpatching transition
lpatch: 'coming_cb': completing unpatching transition
coming_cb: post_unpatch_callback: main
coming_cb: post_unpatch_callback: libcoming.so
lpatch: 'coming_cb': unpatching complete"
stop_target

# --- a library loaded as another's dependency -----------------------------------
# dlopen() of libcomingtop.so loads libcoming.so, which it needs: that one
# is patched as it comes, and seen going when libcomingtop.so is unloaded.
start_target coming/coming "$LIB"
apply coming/coming_cb
expect_reply loadtop "topped 3011" "the dependency was patched before it ran"
status_json
jq_true "$(lib_object coming_cb) | .loaded and .patched" "the dependency is patched"
expect_reply unloadtop untopped
status_json
jq_true "$(lib_object coming_cb) | (.loaded | not) and (.patched | not)" \
	"the dependency went with it"
lp_ok log "$PID"
[ "$(sed -n '/loading library/,$p' <<<"$LP_OUT")" = "$CB_COMING
$CB_GOING" ] ||
	fail "unexpected log for the dependency: $LP_OUT"
expect_reply loadtop "topped 3011" "patched again"
stop_target

# --- an injected runtime ----------------------------------------------------
# The process starts without lpatch; the first apply injects the runtime,
# whose agent hooks the loader: the library that loads afterwards is
# patched before its constructor runs, unpatched as it goes, patched again.
start_plain coming/coming "$LIB"
lp_ok apply "$PID" "$CP/coming_cb.so"
[ "$LP_OUT" = "patch 'coming_cb' enabled (1 function in 1 object; 1 not loaded yet)" ] ||
	fail "apply with injection printed '$LP_OUT'"
status_json
jq_true "$(lib_object coming_cb) | (.loaded | not) and (.patched | not)" \
	"injected: coming_cb waits for libcoming.so"
expect_reply load "loaded 3010 3010" "injected: the constructor ran coming_cb's version"
expect_reply unload unloaded
expect_reply load "loaded 3010 3010" "injected: patched again after the reload"
lp_ok apply "$PID" "$CP/coming_b.so"
expect_reply "call 5" 2005 "injected: coming_b on top"
revert coming_b
revert coming_cb
expect_reply "call 5" 11 "injected: both reverted"
same_bytes "$LIB" coming_value
lp_ok log "$PID"
[ "$(sed -n '/loading library/,/coming_b/p' <<<"$LP_OUT")" = "$CB_COMING
$CB_GOING
$CB_COMING
lpatch: enabling patch 'coming_b'" ] ||
	fail "injected: unexpected coming/going log: $LP_OUT"
stop_target

# --- libraries loaded before the runtime was injected -----------------------
# Loaded by the program itself (load), or as the dependency of one it
# loaded (loadtop): the injected runtime watches them all the same, so
# their unloading runs the going callbacks before they are unmapped, and
# loading them again patches them again.
for how in "load:loaded 21 21:unload:unloaded:loaded 3010 3010" \
	"loadtop:topped 22:unloadtop:untopped:topped 3011"; do
	IFS=: read -r load before unload unloaded after <<<"$how"
	start_plain coming/coming "$LIB"
	expect_reply "$load" "$before" "$load before the injection: the original"
	lp_ok apply "$PID" "$CP/coming_cb.so"
	[ "$LP_OUT" = "patch 'coming_cb' enabled (2 functions in 2 objects)" ] ||
		fail "$load, then apply with injection printed '$LP_OUT'"
	status_json
	jq_true "$(lib_object coming_cb) | .loaded and .patched" "$load: patched where it was"
	expect_reply "$unload" "$unloaded"
	expect_reply "$load" "$after" "$load again: patched as it comes"
	lp_ok log "$PID"
	[ "$(sed -n '/patching complete/,$p' <<<"$LP_OUT" | tail -n +2)" = "$CB_GOING
$CB_COMING" ] || fail "$load: unloading a library loaded before the injection: $LP_OUT"
	stop_target
done

# --- another link-map namespace -------------------------------------------
# AddressSanitizer aborts a process that loads its runtime in a second
# namespace, with or without lpatch.
if sanitized coming/coming; then
	log "skipped under AddressSanitizer: dlmopen"
	exit 0
fi
start_target coming/coming "$LIB"
apply coming/coming_a
expect_reply nsload "nsloaded 21" "a dlmopen()ed copy is not patched"
status_json
jq_true "$(lib_object coming_a) | (.loaded | not) and (.patched | not) and
	(.error | contains(\"link-map namespace\"))" "the copy is reported in status"
lp_ok log "$PID"
grep -qxF "lpatch: 'coming_a': library 'libcoming.so' loaded in link-map namespace 1 is not patched: lpatch patches the default namespace only" <<<"$LP_OUT" ||
	fail "the dlmopen()ed copy is not reported in the log: $LP_OUT"
# The default namespace's copy is patched as usual.
expect_reply load "loaded 1010 1010" "the default namespace's copy"
stop_target
