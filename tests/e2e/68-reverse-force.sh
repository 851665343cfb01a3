#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 68-reverse-force: the ways out of a transition that a blocked thread
# holds open.
#  (a) `revert` of the patch being enabled reverses its transition: it
#      completes although the blocked thread never moved, and the waiting
#      `apply` reports that its patch was not enabled.  Meanwhile other
#      patches can be neither applied nor reverted.
#  (b) `force` completes the transition without checks; the patch is marked
#      forced and its shared object is never unloaded, not even once the
#      patch is reverted and no thread runs its code.
#  (c) `apply --timeout` gives up: it reverses the transition and names the
#      blocking thread and function.
. "$(dirname "$0")/lib.sh"

FIX=$PATCHES/fix.so
require_built "$FIX" "$PATCHES/stack_p1.so" "$PATCHES/stack_p2.so"

# block_thread: park a thread of $PID inside the original compute(); sets
# PARKED to its thread ID.
block_thread() {
	local before
	# A request first, so that the runtime's own threads all exist.
	status_json
	before=$(task_ids)
	expect_reply block blocked
	new_thread "$before"
	PARKED=$NEW_TID
}

# fix_in_transition: fix is being enabled (for wait_until).
fix_in_transition() {
	status_has '.transition.patch == "fix" and .transition.target == "patched"'
}

# --- (a) reverse ------------------------------------------------------------
start_target demo
apply stack_p1 # a patch settled before the transition
expect_reply "call stacked 5" 10005 "stack_p1"
block_thread

# apply waits for the transition; --timeout keeps its signal (at a quarter
# of it) out of this test's way.  Run in the background, killed with the
# targets should the test fail.
"$LPATCH" apply --timeout 600 "$PID" "$FIX" >"$TMP/apply.out" 2>"$TMP/apply.err" &
bg=$!
LP_PIDS+=("$bg")
# bg_running: the background apply has not exited (a zombie has).
bg_running() {
	local state
	state=$(cut -d ' ' -f 3 "/proc/$bg/stat" 2>/dev/null) && [ "$state" != Z ]
}
wait_until "fix's patching transition to start" fix_in_transition
jq_true '.patches[1] | .name == "fix" and .enabled and .transition' "fix in transition"
expect_reply "call compute 5" 500 "main thread, switched during the transition"
bg_running || fail "apply did not wait for the transition: $(cat "$TMP/apply.err")"

# One transition at a time: nothing else changes meanwhile.
lp_fails apply "$PID" "$PATCHES/stack_p2.so"
[[ $LP_ERR == *"patch 'fix' is in transition"* ]] || fail "apply during a transition: $LP_ERR"
lp_fails revert "$PID" stack_p1
[[ $LP_ERR == *"patch 'fix' is in transition"* ]] || fail "revert during a transition: $LP_ERR"
expect_reply "call stacked 5" 10005 "the refused requests changed nothing"
status_json
jq_true '[.patches[].name] == ["stack_p1", "fix"] and .transition.patch == "fix"' \
	"the refused requests changed nothing"

# Reversing needs no thread to leave anything: the parked thread never
# switched, so it is already where the reversed transition goes.
lp_ok revert "$PID" fix
[ "$LP_OUT" = "patch 'fix' disabled" ] || fail "revert of fix in transition printed '$LP_OUT'"
assert_patches stack_p1
expect_reply "call compute 5" 22 "the main thread switched back to the original"

bg_done() { ! bg_running; }
wait_until "the waiting apply to exit" bg_done
wait "$bg"
rc=$?
err=$(cat "$TMP/apply.err")
[ "$rc" -eq 1 ] || fail "the reversed apply exited $rc, expected 1: $err"
[ "$(wc -l <"$TMP/apply.err")" -eq 1 ] || fail "the reversed apply: expected one stderr line: $err"
[[ $err == "lpatch: "*"patch 'fix' not enabled: its transition was reversed" ]] ||
	fail "the reversed apply said: $err"

patch_log_is fix "lpatch: enabling patch 'fix'
lpatch: 'fix': initializing patching transition
lpatch: 'fix': starting patching transition
lpatch: 'fix': reversing transition from patching to unpatching
lpatch: 'fix': starting unpatching transition
lpatch: 'fix': completing unpatching transition
lpatch: 'fix': unpatching complete"

# The parked thread finishes the original, as it never left it.
expect_reply release "released 10" "the parked thread ran the original"
expect_reply "call compute 5" 22 "after the reverse"
# Not forced: nothing holds the patch's code, it goes.
fix_unmapped() { ! maps_file fix.so; }
wait_until "fix.so to be unloaded after the reverse" fix_unmapped
stop_target

# --- (b) force --------------------------------------------------------------
start_target demo
lp_fails force "$PID"
[[ $LP_ERR == *"no patch is in transition"* ]] || fail "force without a transition: $LP_ERR"

block_thread
lp_ok apply --no-wait "$PID" "$FIX"
[ "$LP_OUT" = "patch 'fix' enabled (1 function in 1 object); transition in progress" ] ||
	fail "apply --no-wait printed '$LP_OUT'"
expect_reply "call compute 5" 500 "main thread, switched during the transition"
# Wait for every other thread to switch, so that the parked thread is the
# one that force switches.
only_parked_pending() {
	status_has --threads "[.threads[] | select(.pending) | .tid] == [$PARKED]"
}
wait_until "thread $PARKED to be the only one pending" only_parked_pending

lp_ok force "$PID"
[[ $LP_OUT =~ ^\'fix\':\ transition\ forced\ \(1\ threads?\ switched\ without\ a\ check\)$ ]] ||
	fail "force printed '$LP_OUT'"
status_threads_json
jq_true '.transition == null' "no transition after force"
jq_true '.patches | length == 1 and (.[0] | .name == "fix" and .enabled
	and .forced and (.transition | not))' "fix enabled and forced"
jq_true 'all(.threads[]; .state == "idle" and (.pending | not))' "every thread idle"
expect_reply "call compute 5" 500 "patched"
# Forced, not checked: the parked thread is still inside the original.
expect_reply release "released 10" "the forced thread finished the original"

revert fix
assert_no_patches "forced fix reverted"
expect_reply "call compute 5" 22 "after reverting the forced patch"
maps_file fix.so || fail "fix.so was unloaded although it was forced"

# Another patch's round trip: its object is unloaded; fix.so stays.
apply stack_p1
expect_reply "call stacked 5" 10005 "stack_p1"
revert stack_p1
assert_no_patches "after the round trip"
stack_p1_unmapped() { ! maps_file stack_p1.so; }
wait_until "stack_p1.so to be unloaded" stack_p1_unmapped
maps_file fix.so || fail "fix.so was unloaded although it was forced"

patch_log_is fix "lpatch: enabling patch 'fix'
lpatch: 'fix': initializing patching transition
lpatch: 'fix': starting patching transition
lpatch: 'fix': forcing remaining threads to the patched state
lpatch: 'fix': completing patching transition
lpatch: 'fix': patching complete
$(disable_transcript fix)"
stop_target

# --- (c) timeout --------------------------------------------------------------
start_target demo
block_thread
lp_fails apply --timeout 2 "$PID" "$FIX"
[ "$LP_RC" -eq 1 ] || fail "apply --timeout exited $LP_RC, expected 1"
[[ $LP_ERR =~ thread\ $PARKED([^0-9]|$) ]] || fail "the error does not name thread $PARKED: $LP_ERR"
[[ $LP_ERR == *"'compute'"* ]] || fail "the error does not name compute: $LP_ERR"
[[ $LP_ERR == *reversed* ]] || fail "the error does not say the patch was reversed: $LP_ERR"
[[ $LP_ERR =~ thread\ $PID([^0-9]|$) ]] && fail "the error names the main thread: $LP_ERR"
assert_no_patches "after the timeout"
expect_reply "call compute 5" 22 "after the timeout"

# lpatch signalled the threads before it gave up, then reversed.
patch_log fix
[ "$(uniq <<<"$PLOG")" = "lpatch: enabling patch 'fix'
lpatch: 'fix': initializing patching transition
lpatch: 'fix': starting patching transition
lpatch: 'fix': signalling remaining threads
lpatch: 'fix': reversing transition from patching to unpatching
lpatch: 'fix': starting unpatching transition
lpatch: 'fix': completing unpatching transition
lpatch: 'fix': unpatching complete" ] || fail "unexpected event log of fix: $PLOG"

# The signal did not disturb the parked thread: still in the original.
expect_reply release "released 10" "the parked thread ran the original"
wait_until "fix.so to be unloaded after the timeout" fix_unmapped
stop_target
