#!/bin/bash
# SPDX-License-Identifier: MIT
# test-timeout: 600
#
# 70-fork: fork while transitions start, reverse and complete (seed 000:
# the fork/klp_reverse_transition race).  Two threads of stress/forker fork
# in a loop: every child calls the patched forked() right after fork and
# exits 0 only if it got the original's or the patch's result.  At fixed
# points of each cycle the test has both threads keep their next child
# alive, and knows what that child must end with:
#   - forked during a patching transition (held open by a thread parked in
#     the original forked()): the child finishes patching -> fork_fix;
#   - forked during the reverse of it (held open by a thread parked in the
#     patch's forked()): the child finishes unpatching -> no patch;
#   - forked with fork_fix applied -> fork_fix; reverted -> no patch;
#   - forked during an unpatching transition -> no patch.
# A child continues its transition with its own agent: in the end each one
# must have no transition, every thread idle and not pending, exactly the
# patches it was due, and forked() must give the matching result.
. "$(dirname "$0")/lib.sh"

CYCLES=${LP_FORK_CYCLES:-4}
# A kept child answers once its own runtime is up after fork(); on a
# loaded machine, under the sanitizers, that can take longer than a reply.
LP_REPLY_TIMEOUT=60
FIX=fork_fix
OLD7=22 NEW7=23 # forked(7), the children's argument: 3x + 1, 3x + 2

require_built "$PATCHES/stress/$FIX.so"
start_target stress/forker
PARENT=$PID

declare -a KIDS=()
declare -A KID_WANT=() KID_PHASE=()

# A kept child dies with the forker (PR_SET_PDEATHSIG); kill any left
# anyway, but only our forker's children: a pid may have been reused.
kill_kids() {
	local k
	for k in "${KIDS[@]}"; do
		if [ "$(awk '$1 == "PPid:" { print $2 }' "/proc/$k/status" 2>/dev/null)" = "$PARENT" ]; then
			kill -KILL "$k" 2>/dev/null
		fi
	done
}
trap 'rc=$?; kill_kids; lp_cleanup; exit $rc' EXIT

# keep_kids PHASE WANT: both forking threads keep their next child, which
# must end up with the patches WANT ("fork_fix" or "").
keep_kids() {
	local k
	cmd keep
	[[ $REPLY =~ ^kept\ ([0-9]+)\ ([0-9]+)$ ]] || fail "$1: keep answered '$REPLY'"
	for k in "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"; do
		KIDS+=("$k")
		KID_WANT[$k]=$2
		KID_PHASE[$k]=$1
	done
}

# pid_status PID: `status --json --threads PID` into STATUS; false while
# the process does not answer (a child whose agent is still starting).
pid_status() {
	lp status --json --threads "$1"
	[ "$LP_RC" -eq 0 ] || return 1
	STATUS=$LP_OUT
	printf '%s' "$STATUS" | jq -e . >/dev/null
}

# tid_switched TID STATE: thread TID of the forker has STATE, not pending.
tid_switched() {
	pid_status "$PARENT" &&
		status_is "any(.threads[]; .tid == $1 and .state == \"$2\" and (.pending | not))"
}

# pid_settled PID: PID answers and has no transition (sets STATUS).
pid_settled() {
	pid_status "$1" && status_is '.transition == null'
}


# in_transition TARGET: the forker has fork_fix in transition to TARGET.
in_transition() {
	status_json
	jq_true ".transition.patch == \"$FIX\" and .transition.target == \"$1\"" \
		"$FIX in transition to $1"
	jq_true ".patches[0].name == \"$FIX\" and .patches[0].transition" \
		"$FIX flagged in transition"
}

expect_reply "call 7" $OLD7 "before any patch"
expect_reply storm storming

for ((c = 1; c <= CYCLES; c++)); do
	# A patching transition, held open by a thread inside the original.
	expect_reply park "parked O" "cycle $c"
	lp_ok apply --no-wait "$PID" "$PATCHES/stress/$FIX.so"
	in_transition patched
	keep_kids "cycle $c: patching" "$FIX"

	# The main thread waits for commands: it switches.  A thread it starts
	# inherits its state, so it enters the patch's forked() and stays
	# there.  Then reverse: that thread holds the unpatching open.
	wait_until "the main thread to switch to patched" tid_switched "$PID" patched
	expect_reply park "parked P" "cycle $c: a new thread inherits its creator's state"
	lp_ok revert --no-wait "$PID" "$FIX"
	in_transition unpatched
	keep_kids "cycle $c: reversed patching" ""
	expect_reply release "released 5" "cycle $c: finished in the patch's forked()"
	expect_reply release "released 4" "cycle $c: finished in the original forked()"
	wait_until "cycle $c: the reversed transition to complete" pid_settled "$PID"
	assert_no_patches "cycle $c: after the reverse"
	expect_reply "call 7" $OLD7 "cycle $c: reversed"
	keep_kids "cycle $c: reverted" ""

	# Applied and complete.
	apply "stress/$FIX"
	assert_patches "$FIX"
	expect_reply "call 7" $NEW7 "cycle $c: applied"
	keep_kids "cycle $c: patched" "$FIX"

	# An unpatching transition, held open by a thread inside the patch.
	expect_reply park "parked P" "cycle $c"
	lp_ok revert --no-wait "$PID" "$FIX"
	in_transition unpatched
	keep_kids "cycle $c: unpatching" ""
	expect_reply release "released 5" "cycle $c: finished in the patch's forked()"
	wait_until "cycle $c: the unpatching transition to complete" pid_settled "$PID"
	assert_no_patches "cycle $c: reverted"
	expect_reply "call 7" $OLD7 "cycle $c: reverted"
done

cmd calm
log "storm: $REPLY"
[[ $REPLY =~ ^forks\ ([0-9]+)\ kept\ ([0-9]+)\ bad\ ([0-9]+)$ ]] ||
	fail "calm answered '$REPLY'"
[ "${BASH_REMATCH[3]}" -eq 0 ] ||
	fail "children or forking threads saw wrong results or died: $REPLY"
[ "${BASH_REMATCH[2]}" -eq "${#KIDS[@]}" ] ||
	fail "the forker kept ${BASH_REMATCH[2]} children, the test asked for ${#KIDS[@]}"
cmd children
[ "$(tr ' ' '\n' <<<"$REPLY" | sort -n)" = "$(printf '%s\n' "${KIDS[@]}" | sort -n)" ] ||
	fail "the forker's kept children are '$REPLY', the test's '${KIDS[*]}'"

# The forker itself is back to rest.
assert_no_patches "the forker, at the end"
pid_status "$PARENT" || fail "status --threads of the forker failed: $LP_ERR"
jq_true 'all(.threads[]; .state == "idle" and (.pending | not))' \
	"every thread of the forker idle"

# Every child finished its own transition, to the patches it was due.
for k in "${KIDS[@]}"; do
	want=${KID_WANT[$k]}
	what="child $k (${KID_PHASE[$k]})"
	[ "$(awk '$1 == "PPid:" { print $2 }' "/proc/$k/status" 2>/dev/null)" = "$PARENT" ] ||
		fail "$what is gone"
	wait_until "$what to complete its transition" pid_settled "$k"
	jq_true ".pid == $k" "$what: answered for itself"
	jq_true '(.threads | length) >= 1 and
		all(.threads[]; .state == "idle" and (.pending | not))' \
		"$what: every thread idle, none pending"
	jq_true 'all(.patches[]; .enabled and (.transition | not))' \
		"$what: every patch enabled, none in transition"
	if [ -n "$want" ]; then
		jq_true "[.patches[].name] == [\"$want\"]" "$what: patched with $want"
		expect_reply "probe $k" $NEW7 "$what: forked() after its transition"
	else
		jq_true '.patches == []' "$what: no patch"
		expect_reply "probe $k" $OLD7 "$what: forked() after its transition"
	fi
done
log "${#KIDS[@]} kept children checked"

stop_target
