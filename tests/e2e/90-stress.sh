#!/bin/bash
# SPDX-License-Identifier: MIT
# test-timeout: 900
#
# 90-stress: four threads call hot() in tight loops while hot_fix is applied
# and reverted 1000 times.  Every result must be the old (3x + 1) or the new
# (3x + 2) one; the target counts any other as bad, and a crash fails.
. "$(dirname "$0")/lib.sh"

ROUNDS=${LP_STRESS_ROUNDS:-1000}

start_target hammer
expect_reply start started

# check_stats: the target is alive and has seen no bad result; sets CALLS.
check_stats() {
	cmd "$1"
	[[ $REPLY =~ ^calls\ ([0-9]+)\ old\ ([0-9]+)\ new\ ([0-9]+)\ bad\ ([0-9]+)$ ]] ||
		fail "unexpected stats: '$REPLY'"
	CALLS=${BASH_REMATCH[1]}
	[ "${BASH_REMATCH[4]}" -eq 0 ] || fail "bad results: $REPLY"
}

patch=$PATCHES/hot_fix.so
for ((i = 1; i <= ROUNDS; i++)); do
	timeout "$LP_CMD_TIMEOUT" "$LPATCH" apply "$PID" "$patch" >/dev/null 2>"$TMP/err" ||
		fail "round $i: apply failed: $(cat "$TMP/err")"
	timeout "$LP_CMD_TIMEOUT" "$LPATCH" revert "$PID" hot_fix >/dev/null 2>"$TMP/err" ||
		fail "round $i: revert failed: $(cat "$TMP/err")"
	if ((i % 100 == 0)); then
		check_stats stats
		log "round $i: $REPLY"
	fi
done

check_stats stop
log "final: $REPLY"
[ "$CALLS" -gt 0 ] || fail "the threads made no calls"
assert_no_patches "after $ROUNDS rounds"
same_bytes "$TARGETS/hammer" hot
stop_target
