#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 58-states: system states (the kernel's test-state.sh and seed 004).
# state1 (state 1 at version 1), state2 and state3 (version 2) are replace
# patches whose callbacks change demo's demo_loglevel (4 -> 8), record it
# as system state 1, take it over from the previous patch and give it
# back; each scenario runs in a fresh process against the exact log.
#   1. one patch changes the state and undoes it;
#   2. a cumulative patch takes the change over and undoes it;
#   3. compatible cumulative patches (same version) take it over in turn;
#   4. an older version is refused, naming the state and the versions; so
#      is a replace patch without the state; a patch that does not replace
#      may leave the state out;
#   5. seed 004: a transition to state2 over state1, reversed, gives the
#      state back to state1: state2's post_unpatch sees lp_get_prev_state()
#      and leaves the setting alone; a real disable then restores it.
. "$(dirname "$0")/lib.sh"

SP=$PATCHES/states
require_built "$SP/state1.so" "$SP/state2.so" "$SP/state3.so" "$PATCHES/replace/rep_r.so"

# lines PATCH STEP...: the callback lines of PATCH for each STEP.
lines() {
	local p=$1 step
	shift
	for step in "$@"; do
		case $step in
		pre) echo "$p: pre_patch_callback: main" ;;
		alloc) echo "$p: allocate_loglevel_state: allocating space to store the loglevel" ;;
		shared) echo "$p: allocate_loglevel_state: space to store the loglevel already allocated" ;;
		post) echo "$p: post_patch_callback: main" ;;
		fix) echo "$p: fix_loglevel: fixing the loglevel" ;;
		takeover) echo "$p: fix_loglevel: taking over the loglevel change" ;;
		pre_un) echo "$p: pre_unpatch_callback: main" ;;
		restore) echo "$p: restore_loglevel: restoring the loglevel" ;;
		post_un) echo "$p: post_unpatch_callback: main" ;;
		free) echo "$p: free_loglevel_state: freeing space for the stored loglevel" ;;
		keep) echo "$p: free_loglevel_state: transition reversed: the previous patch keeps the loglevel" ;;
		esac
	done
}

# enable NAME BEFORE AFTER / disable NAME BEFORE AFTER: a whole transition,
# BEFORE and AFTER the lines around it.
enable() {
	printf '%s\n' "lpatch: enabling patch '$1'" \
		"lpatch: '$1': initializing patching transition" "$2" \
		"lpatch: '$1': starting patching transition" \
		"lpatch: '$1': completing patching transition" "$3" \
		"lpatch: '$1': patching complete"
}

disable() {
	printf '%s\n' "lpatch: '$1': initializing unpatching transition" "$2" \
		"lpatch: '$1': starting unpatching transition" \
		"lpatch: '$1': completing unpatching transition" "$3" \
		"lpatch: '$1': unpatching complete"
}

level() {
	expect_reply level "level $1" "${2:-demo_loglevel}"
}

# --- 1: system state modification ------------------------------------------------
start_target demo
apply states/state1
level 8 "state1 changed the setting"
expect_reply "call compute 5" 501 "state1"
revert state1
level 4 "state1 undid it"
log_is "$(enable state1 "$(lines state1 pre alloc)" "$(lines state1 post fix)")
$(disable state1 "$(lines state1 pre_un restore)" "$(lines state1 post_un free)")"
stop_target

# --- 2: taking over the state by a cumulative patch --------------------------------
start_target demo
apply states/state1
apply states/state2
assert_patches state2
level 8 "state2 took the change over"
revert state2
level 4 "state2 undid it"
log_is "$(enable state1 "$(lines state1 pre alloc)" "$(lines state1 post fix)")
$(enable state2 "$(lines state2 pre shared)" "$(lines state2 post takeover)")
$(disable state2 "$(lines state2 pre_un restore)" "$(lines state2 post_un free)")"
stop_target

# --- 3: compatible cumulative patches -------------------------------------------------
start_target demo
apply states/state2
apply states/state3
apply states/state2
assert_patches state2
level 8 "after state2, state3, state2"
revert state2
level 4 "undone"
log_is "$(enable state2 "$(lines state2 pre alloc)" "$(lines state2 post fix)")
$(enable state3 "$(lines state3 pre shared)" "$(lines state3 post takeover)")
$(enable state2 "$(lines state2 pre shared)" "$(lines state2 post takeover)")
$(disable state2 "$(lines state2 pre_un restore)" "$(lines state2 post_un free)")"
stop_target

# --- 4: incompatible patches are refused --------------------------------------------
start_target demo
apply states/state2
lp_fails apply "$PID" "$SP/state1.so"
[[ $LP_ERR == *"patch 'state1' is not compatible with the installed patches: state 1 is at version 1, below version 2 of 'state2'" ]] ||
	fail "the older state was refused with: $LP_ERR"
lp_fails apply "$PID" "$PATCHES/replace/rep_r.so"
[[ $LP_ERR == *"patch 'rep_r' is not compatible with the installed patches: it replaces them, but lacks state 1 (version 2 of 'state2')" ]] ||
	fail "the replace patch without the state was refused with: $LP_ERR"
assert_patches state2
level 8 "nothing changed"
# A patch that does not replace leaves the state to the others.
apply fix
assert_patches state2 fix
revert fix
revert state2
level 4 "undone"
log_is "$(enable state2 "$(lines state2 pre alloc)" "$(lines state2 post fix)")
lpatch: patch 'state1' is not compatible with the installed patches: state 1 is at version 1, below version 2 of 'state2'
lpatch: patch 'rep_r' is not compatible with the installed patches: it replaces them, but lacks state 1 (version 2 of 'state2')
$(enable_transcript fix)
$(disable_transcript fix)
$(disable state2 "$(lines state2 pre_un restore)" "$(lines state2 post_un free)")"
stop_target

# --- 5: a reversed takeover hands the state back (seed 004) -----------------------------
start_target demo
apply states/state1
status_json # every runtime thread exists before the parked one
expect_reply block blocked # inside state1's compute()
lp_ok apply --no-wait "$PID" "$SP/state2.so"
status_has '.transition.patch == "state2"' || fail "state2 is not in transition"
revert state2
assert_patches state1
level 8 "state1's change stays"
expect_reply release "released 101" "the parked thread finished state1's compute()"
revert state1
level 4 "state1 undid its change"
log_is "$(enable state1 "$(lines state1 pre alloc)" "$(lines state1 post fix)")
lpatch: enabling patch 'state2'
lpatch: 'state2': initializing patching transition
$(lines state2 pre shared)
lpatch: 'state2': starting patching transition
lpatch: 'state2': reversing transition from patching to unpatching
lpatch: 'state2': starting unpatching transition
lpatch: 'state2': completing unpatching transition
$(lines state2 post_un keep)
lpatch: 'state2': unpatching complete
$(disable state1 "$(lines state1 pre_un restore)" "$(lines state1 post_un free)")"
stop_target
