#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 56-callbacks: the eleven scenarios of the kernel's test-callbacks.sh,
# each in a fresh process, each checked against the exact event-log
# transcript.  The callbacks target loads and unloads libcbmod.so and
# libcbbusy.so (the kernel's test_klp_callbacks_mod and _busy) and logs
# its steps ("% load ...", "cbmod: init"); cb_demo logs every callback of
# its three objects with the object's state, cb_demo2 (and its replace
# twin cb_demo2r) those of the main program.  "% apply"/"% revert" lines
# are the test's own marks, before it runs the command.
. "$(dirname "$0")/lib.sh"

DIR=$TARGETS/callbacks
CP=$PATCHES/callbacks
require_built "$DIR/callbacks" "$DIR/libcbmod.so" "$DIR/libcbbusy.so" \
	"$CP/cb_demo.so" "$CP/cb_demo2.so" "$CP/cb_demo2r.so"

LIVE="[LIVE] normal state"
COMING="[COMING] loading, its constructors not run yet"
GOING="[GOING] unloading, its destructors ran"

scenario() {
	log "--- $1"
	start_target callbacks/callbacks "$DIR"
}

load() {
	expect_reply "load $*" loaded
}

unload() {
	expect_reply "unload $1" unloaded
}

# lp_apply NAME [OPTIONS...] / lp_revert NAME: mark, then run.
lp_apply() {
	local name=$1
	shift
	expect_reply "mark apply $name" marked
	lp_ok apply "$@" "$PID" "$CP/$name.so"
}

lp_revert() {
	expect_reply "mark revert $1" marked
	lp_ok revert "$PID" "$1"
}

# cb PATCH CALLBACK [OBJECT STATE]: one callback's line.
cb() {
	if [ $# -gt 2 ]; then
		echo "$1: $2_callback: $3 -> $4"
	else
		echo "$1: $2_callback: main"
	fi
}

# enabled NAME PRE POST: a whole enable; PRE and POST are the callback
# lines run before and after the transition.
enabled() {
	printf '%s\n' "lpatch: enabling patch '$1'" \
		"lpatch: '$1': initializing patching transition" "$2" \
		"lpatch: '$1': starting patching transition" \
		"lpatch: '$1': completing patching transition" "$3" \
		"lpatch: '$1': patching complete"
}

disabled() {
	printf '%s\n' "lpatch: '$1': initializing unpatching transition" "$2" \
		"lpatch: '$1': starting unpatching transition" \
		"lpatch: '$1': completing unpatching transition" "$3" \
		"lpatch: '$1': unpatching complete"
}

transcript() {
	log_is "$(printf '%s\n' "$@")"
	stop_target
}

# --- 1: target library before the patch ------------------------------------
scenario "target library before the patch"
load mod
lp_apply cb_demo
lp_revert cb_demo
unload mod
transcript "% load libcbmod.so" "cbmod: init" "% apply cb_demo" \
	"$(enabled cb_demo "$(cb cb_demo pre_patch)
$(cb cb_demo pre_patch libcbmod.so "$LIVE")" "$(cb cb_demo post_patch)
$(cb cb_demo post_patch libcbmod.so "$LIVE")")" \
	"% revert cb_demo" \
	"$(disabled cb_demo "$(cb cb_demo pre_unpatch)
$(cb cb_demo pre_unpatch libcbmod.so "$LIVE")" "$(cb cb_demo post_unpatch)
$(cb cb_demo post_unpatch libcbmod.so "$LIVE")")" \
	"% unload libcbmod.so" "cbmod: exit"

# --- 2: the library comes after the patch -----------------------------------
scenario "library coming"
lp_apply cb_demo
load mod
lp_revert cb_demo
unload mod
transcript "% apply cb_demo" \
	"$(enabled cb_demo "$(cb cb_demo pre_patch)" "$(cb cb_demo post_patch)")" \
	"% load libcbmod.so" \
	"lpatch: applying patch 'cb_demo' to loading library 'libcbmod.so'" \
	"$(cb cb_demo pre_patch libcbmod.so "$COMING")" \
	"$(cb cb_demo post_patch libcbmod.so "$COMING")" \
	"cbmod: init" "% revert cb_demo" \
	"$(disabled cb_demo "$(cb cb_demo pre_unpatch)
$(cb cb_demo pre_unpatch libcbmod.so "$LIVE")" "$(cb cb_demo post_unpatch)
$(cb cb_demo post_unpatch libcbmod.so "$LIVE")")" \
	"% unload libcbmod.so" "cbmod: exit"

# --- 3: the library goes before the patch ------------------------------------
scenario "library going"
load mod
lp_apply cb_demo
unload mod
lp_revert cb_demo
transcript "% load libcbmod.so" "cbmod: init" "% apply cb_demo" \
	"$(enabled cb_demo "$(cb cb_demo pre_patch)
$(cb cb_demo pre_patch libcbmod.so "$LIVE")" "$(cb cb_demo post_patch)
$(cb cb_demo post_patch libcbmod.so "$LIVE")")" \
	"% unload libcbmod.so" "cbmod: exit" \
	"$(cb cb_demo pre_unpatch libcbmod.so "$GOING")" \
	"lpatch: reverting patch 'cb_demo' on unloading library 'libcbmod.so'" \
	"$(cb cb_demo post_unpatch libcbmod.so "$GOING")" \
	"% revert cb_demo" \
	"$(disabled cb_demo "$(cb cb_demo pre_unpatch)" "$(cb cb_demo post_unpatch)")"

# --- 4: coming and going -------------------------------------------------------
scenario "library coming and going"
lp_apply cb_demo
load mod
unload mod
lp_revert cb_demo
transcript "% apply cb_demo" \
	"$(enabled cb_demo "$(cb cb_demo pre_patch)" "$(cb cb_demo post_patch)")" \
	"% load libcbmod.so" \
	"lpatch: applying patch 'cb_demo' to loading library 'libcbmod.so'" \
	"$(cb cb_demo pre_patch libcbmod.so "$COMING")" \
	"$(cb cb_demo post_patch libcbmod.so "$COMING")" \
	"cbmod: init" "% unload libcbmod.so" "cbmod: exit" \
	"$(cb cb_demo pre_unpatch libcbmod.so "$GOING")" \
	"lpatch: reverting patch 'cb_demo' on unloading library 'libcbmod.so'" \
	"$(cb cb_demo post_unpatch libcbmod.so "$GOING")" \
	"% revert cb_demo" \
	"$(disabled cb_demo "$(cb cb_demo pre_unpatch)" "$(cb cb_demo post_unpatch)")"

# --- 5: the library never loads -------------------------------------------------
scenario "target library not present"
lp_apply cb_demo
lp_revert cb_demo
transcript "% apply cb_demo" \
	"$(enabled cb_demo "$(cb cb_demo pre_patch)" "$(cb cb_demo post_patch)")" \
	"% revert cb_demo" \
	"$(disabled cb_demo "$(cb cb_demo pre_unpatch)" "$(cb cb_demo post_unpatch)")"

# --- 6: the main program's pre_patch fails: the apply fails ---------------------
scenario "pre-patch callback -19"
load mod
expect_reply "preret -19" "preret -19"
expect_reply "mark apply cb_demo, pre_patch returning -19" marked
lp_fails apply "$PID" "$CP/cb_demo.so"
[[ $LP_ERR == *"pre-patch callback failed for object 'main program'"* ]] ||
	fail "the refused apply said: $LP_ERR"
assert_no_patches "after the refused apply"
unload mod
transcript "% load libcbmod.so" "cbmod: init" "% apply cb_demo, pre_patch returning -19" \
	"lpatch: enabling patch 'cb_demo'" \
	"lpatch: 'cb_demo': initializing patching transition" \
	"$(cb cb_demo pre_patch)" \
	"lpatch: pre-patch callback failed for object 'main program'" \
	"lpatch: failed to enable patch 'cb_demo'" \
	"lpatch: 'cb_demo': canceling patching transition, going to unpatch" \
	"lpatch: 'cb_demo': completing unpatching transition" \
	"lpatch: 'cb_demo': unpatching complete" \
	"% unload libcbmod.so" "cbmod: exit"

# --- 7: a coming library's pre_patch fails: it stays unpatched -------------------
scenario "library coming, pre-patch callback -19"
lp_apply cb_demo
expect_reply "preret -19" "preret -19"
load mod
status_json
jq_true '.patches[0].objects[] | select(.name == "libcbmod.so") | .loaded and
	(.patched | not) and (.error | contains("pre-patch callback failed"))' \
	"the refused library in status"
lp_revert cb_demo
unload mod
transcript "% apply cb_demo" \
	"$(enabled cb_demo "$(cb cb_demo pre_patch)" "$(cb cb_demo post_patch)")" \
	"% load libcbmod.so" \
	"lpatch: applying patch 'cb_demo' to loading library 'libcbmod.so'" \
	"$(cb cb_demo pre_patch libcbmod.so "$COMING")" \
	"lpatch: pre-patch callback failed for object 'libcbmod.so'" \
	"lpatch: patch 'cb_demo' failed for library 'libcbmod.so', which stays unpatched" \
	"cbmod: init" "% revert cb_demo" \
	"$(disabled cb_demo "$(cb cb_demo pre_unpatch)" "$(cb cb_demo post_unpatch)")" \
	"% unload libcbmod.so" "cbmod: exit"

# --- 8: several target libraries -------------------------------------------------
scenario "multiple target libraries"
load busy
lp_apply cb_demo
load mod
unload mod
lp_revert cb_demo
unload busy
transcript "% load libcbbusy.so" "cbbusy: init" "cbbusy: busy_work enter" \
	"cbbusy: busy_work exit" "% apply cb_demo" \
	"$(enabled cb_demo "$(cb cb_demo pre_patch)
$(cb cb_demo pre_patch libcbbusy.so "$LIVE")" "$(cb cb_demo post_patch)
$(cb cb_demo post_patch libcbbusy.so "$LIVE")")" \
	"% load libcbmod.so" \
	"lpatch: applying patch 'cb_demo' to loading library 'libcbmod.so'" \
	"$(cb cb_demo pre_patch libcbmod.so "$COMING")" \
	"$(cb cb_demo post_patch libcbmod.so "$COMING")" \
	"cbmod: init" "% unload libcbmod.so" "cbmod: exit" \
	"$(cb cb_demo pre_unpatch libcbmod.so "$GOING")" \
	"lpatch: reverting patch 'cb_demo' on unloading library 'libcbmod.so'" \
	"$(cb cb_demo post_unpatch libcbmod.so "$GOING")" \
	"% revert cb_demo" \
	"$(disabled cb_demo "$(cb cb_demo pre_unpatch)
$(cb cb_demo pre_unpatch libcbbusy.so "$LIVE")" "$(cb cb_demo post_unpatch)
$(cb cb_demo post_unpatch libcbbusy.so "$LIVE")")" \
	"% unload libcbbusy.so" "cbbusy: exit"

# --- 9: a busy library holds the transition; another comes and goes meanwhile -----
scenario "busy target library"
load busy block
lp_apply cb_demo --no-wait
in_transition() {
	status_has '.transition.patch == "cb_demo" and .transition.target == "patched"'
}
wait_until "cb_demo's transition to stall on busy_work" in_transition
load mod
unload mod
lp_revert cb_demo
unload busy
transcript "% load libcbbusy.so block" "cbbusy: init" "cbbusy: busy_work enter" \
	"% apply cb_demo" \
	"lpatch: enabling patch 'cb_demo'" \
	"lpatch: 'cb_demo': initializing patching transition" \
	"$(cb cb_demo pre_patch)" "$(cb cb_demo pre_patch libcbbusy.so "$LIVE")" \
	"lpatch: 'cb_demo': starting patching transition" \
	"% load libcbmod.so" \
	"lpatch: applying patch 'cb_demo' to loading library 'libcbmod.so'" \
	"$(cb cb_demo pre_patch libcbmod.so "$COMING")" \
	"cbmod: init" "% unload libcbmod.so" "cbmod: exit" \
	"lpatch: reverting patch 'cb_demo' on unloading library 'libcbmod.so'" \
	"$(cb cb_demo post_unpatch libcbmod.so "$GOING")" \
	"% revert cb_demo" \
	"lpatch: 'cb_demo': reversing transition from patching to unpatching" \
	"lpatch: 'cb_demo': starting unpatching transition" \
	"lpatch: 'cb_demo': completing unpatching transition" \
	"$(cb cb_demo post_unpatch)" "$(cb cb_demo post_unpatch libcbbusy.so "$LIVE")" \
	"lpatch: 'cb_demo': unpatching complete" \
	"% unload libcbbusy.so" "cbbusy: busy_work exit" "cbbusy: exit"

# --- 10: two patches ---------------------------------------------------------------
scenario "multiple patches"
lp_apply cb_demo
lp_apply cb_demo2
lp_revert cb_demo2
lp_revert cb_demo
transcript "% apply cb_demo" \
	"$(enabled cb_demo "$(cb cb_demo pre_patch)" "$(cb cb_demo post_patch)")" \
	"% apply cb_demo2" \
	"$(enabled cb_demo2 "$(cb cb_demo2 pre_patch)" "$(cb cb_demo2 post_patch)")" \
	"% revert cb_demo2" \
	"$(disabled cb_demo2 "$(cb cb_demo2 pre_unpatch)" "$(cb cb_demo2 post_unpatch)")" \
	"% revert cb_demo" \
	"$(disabled cb_demo "$(cb cb_demo pre_unpatch)" "$(cb cb_demo post_unpatch)")"

# --- 11: atomic replace: only the new patch's callbacks run -------------------------
scenario "atomic replace"
lp_apply cb_demo
lp_apply cb_demo2r
assert_patches cb_demo2r
lp_revert cb_demo2r
assert_no_patches "after reverting the replace patch"
transcript "% apply cb_demo" \
	"$(enabled cb_demo "$(cb cb_demo pre_patch)" "$(cb cb_demo post_patch)")" \
	"% apply cb_demo2r" \
	"$(enabled cb_demo2r "$(cb cb_demo2r pre_patch)" "$(cb cb_demo2r post_patch)")" \
	"% revert cb_demo2r" \
	"$(disabled cb_demo2r "$(cb cb_demo2r pre_unpatch)" "$(cb cb_demo2r post_unpatch)")"
