# SPDX-License-Identifier: MIT
#
# tests/e2e/churn.bash - what the tests of tests/targets/stress/churn share
# (72-parked, 82-inject-churn), sourced after lib.sh: the target's
# expectations and progress, and its threads' states in `status --json`.

# progress WHY: every churn thread got through another round under the
# current expectation (the target polls; a thread that does not is stuck).
progress() {
	expect_reply progress progress "$1: every churn thread goes on"
}

# results WHAT WHY: from now on the threads' results must be WHAT; for
# new and old, wait until each of them made a checked call.
results() {
	expect_reply "expect $1" "expect $1"
	[ "$1" = any ] || progress "$2"
}

# churn_status: `status --json --threads` of the target into STATUS.
churn_status() {
	lp_ok status --json --threads "$PID"
	STATUS=$LP_OUT
}

settled() {
	churn_status
	status_is '.transition == null'
}

# spinner_reported: the spinner is pending and reported as unreachable.
spinner_reported() {
	churn_status
	status_is '.transition != null and any(.threads[]; .name == "spinner" and .pending
		and .state == "unpatched" and ((.reason // "") | test("signal")))'
}

# only_spinner_pending: every other thread has switched.
only_spinner_pending() {
	churn_status
	status_is '.transition.threads_pending == 1 and
		[.threads[] | select(.pending) | .name] == ["spinner"]'
}

# all_idle WHY: no transition, every thread idle and not pending.
all_idle() {
	churn_status
	jq_true '.transition == null and
		all(.threads[]; .state == "idle" and (.pending | not))' "$1: every thread idle"
}

# mapped FILE: the target maps a file named FILE (e.g. churn_fix.so).
mapped() {
	grep -qF "/$1" "/proc/$PID/maps"
}

not_mapped() {
	! mapped "$1"
}

# stats_ok WHY: no thread saw a wrong result or failed; sets STATS.
stats_ok() {
	cmd stats
	STATS=$REPLY
	[[ $STATS =~ bad\ ([0-9]+)$ ]] || fail "$1: unexpected stats '$STATS'"
	[ "${BASH_REMATCH[1]}" -eq 0 ] || fail "$1: wrong results or failures: $STATS"
}
