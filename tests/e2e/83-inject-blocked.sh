#!/bin/bash
# SPDX-License-Identifier: MIT
# test-timeout: 600
#
# 83-inject-blocked: the thread that loads the runtime is borrowed from a
# system call and must come back to it as if nothing happened
# (tests/targets/blocker, patch blocker_fix).  blocker's main thread waits
# in ppoll() with a signal mask, where no thread is borrowed, so the only
# thread the injector can borrow is the one blocked in:
#   - read() on a pipe: it still reads what is written afterwards;
#   - accept(): it still accepts the connection made afterwards;
#   - epoll_wait(), which a stop ends with a plain EINTR: it still waits,
#     and returns the event;
#   - nanosleep(): the sleep still lasts its full time, and returns 0.
# --verbose names that thread and its function.  Then all four at once:
# one is borrowed, the others stopped for a moment while their registers
# are read, and each call still ends normally.  No call, ppoll() included,
# ever fails with EINTR.
. "$(dirname "$0")/lib.sh"

require_built "$TARGETS/blocker" "$PATCHES/blocker_fix.so"

# The function the borrowed thread is in, by kind.
declare -A FUNC=([read]=read [accept]=accept [epoll]=epoll_wait [sleep]=clock_nanosleep)

# finish KIND: make the call complete, and check how it ended.
finish() {
	case $1 in
	read)
		expect_reply "feed read" "fed read"
		expect_reply "result read" "read ok hello" "read after the injection"
		;;
	accept)
		expect_reply "feed accept" "fed accept"
		expect_reply "result accept" "accept ok" "accept after the injection"
		;;
	epoll)
		expect_reply "feed epoll" "fed epoll"
		expect_reply "result epoll" "epoll ok 1" "epoll_wait after the injection"
		;;
	sleep)
		LP_REPLY_TIMEOUT=90 expect_reply "result sleep" "sleep ok" \
			"nanosleep across the injection"
		;;
	esac
}

# inject KIND...: start the threads, apply (injecting), check they are all
# still in their calls.  Returns 1 when a sleep ended before apply did (a
# machine too slow for SLEEP seconds): the caller tries again, longer.
inject() {
	local k tid
	declare -gA TID=()
	for k in "$@"; do
		if [ "$k" = sleep ]; then
			cmd "start sleep $SLEEP"
		else
			cmd "start $k"
		fi
		[[ $REPLY =~ ^started\ $k\ ([0-9]+)$ ]] || fail "start $k answered '$REPLY'"
		TID[$k]=${BASH_REMATCH[1]}
	done
	# Not waiting for the transition: the sleep has to outlast the injection only.
	t0=$(date +%s%N)
	lp apply --verbose --no-wait "$PID" "$PATCHES/blocker_fix.so"
	[ "$LP_RC" -eq 0 ] || fail "apply exited $LP_RC: $LP_ERR"
	log "$LP_ERR"
	log "apply --no-wait took $((($(date +%s%N) - t0) / 1000000)) ms"
	if [ $# -eq 1 ]; then
		grep -q "^lpatch: injected the runtime into $PID through thread ${TID[$1]} (in ${FUNC[$1]}):" <<<"$LP_ERR" ||
			fail "the thread in ${FUNC[$1]} (${TID[$1]}) did not load the runtime: $LP_ERR"
	fi
	for k in "$@"; do
		cmd "busy $k"
		[ "$REPLY" = "busy $k yes" ] && continue
		[ "$k" = sleep ] || fail "$k: the call ended during the injection: $REPLY"
		cmd "result sleep"
		[ "$REPLY" = "sleep ok" ] || fail "the sleep did not last: $REPLY"
		return 1
	done
	wait_until "the transition to complete" no_transition
	expect_reply "call 5" 17 "patched"
	return 0
}

# run KIND...: one blocker with these threads, injected and patched.
run() {
	for SLEEP in 6 12 24; do
		start_plain blocker
		if inject "$@"; then
			for k in "$@"; do
				finish "$k"
			done
			expect_reply stats "eintr 0" "ppoll() of the main thread"
			revert blocker_fix
			expect_reply "call 5" 16 "reverted"
			stop_target
			return
		fi
		log "the sleep of $SLEEP s ended before the apply did: again, longer"
		stop_target
	done
	fail "every sleep ended before the apply did"
}

for kind in read accept epoll sleep; do
	log "--- borrowed in ${FUNC[$kind]}"
	run "$kind"
done
log "--- all four"
run read accept epoll sleep
