# SPDX-License-Identifier: MIT
#
# tests/e2e/many.bash - what the tests of tests/targets/stress/many share
# (74-many-threads, 81-inject-threads), sourced after lib.sh: starting its
# threads, its expectations, and its threads' states in `status --json`.

# start_many N: have the target start N threads, or skip the test where the
# system allows fewer.
start_many() {
	LP_REPLY_TIMEOUT=90 cmd "start $1"
	case $REPLY in
	"started $1") ;;
	"error limit"*) skip "this system does not allow $1 threads: $REPLY" ;;
	*) fail "start $1 answered '$REPLY'" ;;
	esac
}

# results WHAT WHY: from now on the busy threads' results must be WHAT;
# for new and old, wait until each of them made a checked call.
results() {
	expect_reply "expect $1" "expect $1"
	[ "$1" = any ] || expect_reply progress progress "$2: the busy threads go on"
}

# many_status: `status --json --threads` into STATUS.
many_status() {
	lp_ok status --json --threads "$PID"
	STATUS=$LP_OUT
}

# many_true FILTER WHY: like jq_true, but a failure shows a summary of the
# status rather than a thousand threads.
many_true() {
	status_is "$1" && return 0
	fail "$2 failed: jq '$1' on: $(printf '%s' "$STATUS" | jq -c '{transition,
		patches: [.patches[] | {name, enabled, transition, forced}],
		threads: (.threads | length),
		states: (.threads | group_by(.state, .pending) |
			map({state: .[0].state, pending: .[0].pending, n: length})),
		notable: [.threads[] | select(.pending or .reason != null or
			(.name | test("^(parked|busy)")))]}')"
}

settled() {
	many_status
	status_is '.transition == null'
}

# only_parked_pending: every thread has switched but the parked one.
only_parked_pending() {
	many_status
	status_is '.transition.threads_pending == 1 and
		[.threads[] | select(.pending) | .name] == ["parked"]'
}
