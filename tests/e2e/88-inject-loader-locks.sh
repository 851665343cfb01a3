#!/bin/bash
# SPDX-License-Identifier: MIT
# test-timeout: 600
#
# 88-inject-loader-locks: an injected runtime keeps the lock order, the
# loader's locks before lp_mutex (tests/targets/stress/churn, patch
# stress/churn_fix).  churn's "dlopen" thread is always inside dlopen() or
# dlclose(), so while the agent holds lp_mutex that thread is often waiting
# for it in the loader hook, the loader's locks held.  The agent must take
# none of them then: not by a first use of its libraries' dynamic TLS
# (libdw's, as it unwinds the threads' stacks), not by walking the loader's
# list.  Fresh processes, each injected while the spinner holds the
# transition open, so that the agent checks the threads again and again:
# every apply returns, the agent keeps answering, force completes it.
. "$(dirname "$0")/lib.sh"

ROUNDS=${LP_LOCK_ROUNDS:-10}
FIXSO=$PATCHES/stress/churn_fix.so
NEW5=17 # churnval(5) with the patch

require_built "$FIXSO" "$TARGETS/libdemo.so"
for ((i = 1; i <= ROUNDS; i++)); do
	start_plain stress/churn "$TARGETS/libdemo.so"
	expect_reply start started
	expect_reply nosig "nosig started"
	expect_reply spin spinning
	lp apply --no-wait "$PID" "$FIXSO"
	[ "$LP_RC" -eq 0 ] || fail "round $i: apply exited $LP_RC: $LP_ERR"
	# The agent goes on checking the spinner: it answers between its checks.
	for ((j = 0; j < 5; j++)); do
		status_json
	done
	jq_true '.transition != null' "round $i: the spinner holds the transition"
	lp_ok force "$PID"
	expect_reply "call 5" $NEW5 "round $i: forced"
	stop_plain_target
done
log "$ROUNDS processes injected and patched while their threads load and unload"
