#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 80-inject: `apply` to a process started without the runtime injects it
# first.  A single-threaded program, built as PIE (demo) and as a non-PIE
# executable (demo-nopie), waiting for its next command in fgets():
#   - a patch that cannot fit it (a function it lacks, another build) is
#     refused before anything is injected;
#   - apply injects the runtime through its only thread, and --verbose says
#     so with the longest thread stop; the patch works;
#   - `list` finds the process, whatever way its runtime came;
#   - a second apply does not inject again (--json says so), and the
#     runtime is mapped once;
#   - both patches revert, the code is the original again, the program goes
#     on and ends normally.
. "$(dirname "$0")/lib.sh"

require_built "$PATCHES/stack_p1.so"

# runtime_maps: how many times the runtime is mapped executable in $PID.
runtime_maps() {
	awk '$2 ~ /x/ && $6 ~ /\/liblpatch\.so$/' "/proc/$PID/maps" | wc -l
}

for prog in demo demo-nopie; do
	log "--- $prog"
	start_plain "$prog"
	expect_reply "call compute 5" 22 "$prog before"
	[ "$(task_ids | wc -l)" -eq 1 ] || fail "$prog is not single-threaded"

	lp_fails apply "$PID" "$PATCHES/badfunc.so"
	lp_fails apply "$PID" "$PATCHES/badbuildid.so"
	[ "$(runtime_maps)" -eq 0 ] || fail "a patch that cannot fit injected the runtime"
	case $LP_ERR in
	*"runtime was not injected"*) ;;
	*) fail "the refusal does not say that nothing was injected: $LP_ERR" ;;
	esac
	expect_reply "call compute 5" 22 "$prog after the refusals"

	lp apply --verbose "$PID" "$PATCHES/fix.so"
	[ "$LP_RC" -eq 0 ] || fail "apply --verbose exited $LP_RC: $LP_ERR"
	[ "$LP_OUT" = "patch 'fix' enabled (1 function in 1 object)" ] ||
		fail "apply printed '$LP_OUT'"
	grep -Eq "^lpatch: injected the runtime into $PID through thread $PID \(in [a-z_]+\): [0-9.]+ ms, longest thread stop [0-9.]+ ms$" <<<"$LP_ERR" ||
		fail "apply --verbose does not report the injection: $LP_ERR"
	grep -Eq "^lpatch: [0-9]+ thread stops? in all, the longest [0-9.]+ ms \(thread [0-9]+\)$" <<<"$LP_ERR" ||
		fail "apply --verbose does not report the thread stops: $LP_ERR"
	log "$LP_ERR"
	expect_reply "call compute 5" 500 "$prog patched"
	[ "$(runtime_maps)" -eq 1 ] || fail "the runtime is not mapped once after the injection"
	assert_patches fix

	# Other processes on the machine may be slow to answer: a warning, not a failure.
	lp list --json
	[ "$LP_RC" -eq 0 ] || fail "lpatch list --json exited $LP_RC: $LP_ERR"
	jq -e --argjson pid "$PID" 'any(.[]; .pid == $pid and [.patches[].name] == ["fix"])' \
		<<<"$LP_OUT" >/dev/null || fail "list does not show $PID with fix: $LP_OUT"

	lp_ok apply --json "$PID" "$PATCHES/stack_p1.so"
	jq -e --argjson pid "$PID" 'length == 1 and (.[0] | .pid == $pid and .ok
		and .message == "patch '"'stack_p1'"' enabled (1 function in 1 object)"
		and (.injected | not) and .runtime_injected and .error == null)' \
		<<<"$LP_OUT" >/dev/null || fail "second apply: $LP_OUT"
	[ "$(runtime_maps)" -eq 1 ] || fail "the runtime is mapped more than once"
	assert_patches fix stack_p1

	revert stack_p1
	revert fix
	assert_no_patches "$prog after revert"
	expect_reply "call compute 5" 22 "$prog reverted"
	same_bytes "$TARGETS/$prog" compute
	patch_log_is fix "$(apply_revert_transcript fix)"
	lp_ok log "$PID"
	! grep -q "cannot" <<<"$LP_OUT" || fail "the runtime logged a failure: $LP_OUT"
	stop_target
done
