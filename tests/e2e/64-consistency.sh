#!/bin/bash
# SPDX-License-Identifier: MIT
# test-timeout: 900
#
# 64-consistency: the consistency model under load.  pair_fix changes the
# format that encode() writes and decode() reads, and replaces their
# caller run_pair() too.  Four threads call run_pair() without a pause and
# count every pair that mixed the two formats.  Patch, unpatch and reverse
# cycles must never mix them: a thread switches only where no replaced
# function (run_pair included) is on its stack.
#
# Then the same with the consistency model switched off
# (LPATCH_TEST_NO_CONSISTENCY=1: every thread switches at once): the pairs
# get mixed, which proves the first half could have failed.
. "$(dirname "$0")/lib.sh"

# The first target must have the consistency model, whatever our caller's
# environment says; the second gets the knob explicitly.
unset LPATCH_TEST_NO_CONSISTENCY

CYCLES=${LP_CONSISTENCY_CYCLES:-30}
UNSAFE_CYCLES=300
NTHREADS=4
PATCH=$PATCHES/pair_fix.so
require_built "$PATCH"

# pair_stats: ask for "stats"; sets CALLS, MISMATCHES and PATCHED (pairs
# the patch's run_pair() answered).
pair_stats() {
	cmd stats
	[[ $REPLY =~ ^calls\ ([0-9]+)\ mismatches\ ([0-9]+)\ patched\ ([0-9]+)$ ]] ||
		fail "unexpected stats: '$REPLY'"
	CALLS=${BASH_REMATCH[1]}
	MISMATCHES=${BASH_REMATCH[2]}
	PATCHED=${BASH_REMATCH[3]}
}

# consistent_progress CALLS [PATCHED]: no pair was ever mixed; true once
# the threads made more calls than CALLS (and more of them answered by the
# patch than PATCHED).  For wait_until: the threads never stop by
# themselves, so more calls are certain to come.
consistent_progress() {
	pair_stats
	[ "$MISMATCHES" -eq 0 ] || fail "$MISMATCHES pairs mixed the formats ($REPLY)"
	[ "$CALLS" -gt "$1" ] && [ "$PATCHED" -gt "${2:--1}" ]
}

# progress_check [patched]: wait for the threads to make more calls (with
# "patched", more that the patch's run_pair() answered), none mixed.
progress_check() {
	local calls patched
	pair_stats
	calls=$CALLS patched=$PATCHED
	if [ "${1:-}" = patched ]; then
		wait_until "the threads to run the patched pair" \
			consistent_progress "$calls" "$patched"
	else
		wait_until "the threads to go on" consistent_progress "$calls"
	fi
}

ENABLED="patch 'pair_fix' enabled (3 functions in 1 object)"
DISABLED="patch 'pair_fix' disabled"
REVERSED="$(enable_transcript pair_fix | sed -n '1,3p')
lpatch: 'pair_fix': reversing transition from patching to unpatching
$(disable_transcript pair_fix | sed -n '2,4p')"

# --- with the consistency model ---------------------------------------------
start_target pairs
expect_reply which "encode old decode old run_pair old" "before the patch"
expect_reply "start $NTHREADS" started
progress_check

for ((i = 1; i <= CYCLES; i++)); do
	# Enable and wait for the transition: the threads run the new pair.
	lp_ok apply "$PID" "$PATCH"
	[ "$LP_OUT" = "$ENABLED" ] || fail "cycle $i: apply printed '$LP_OUT'"
	expect_reply which "encode new decode new run_pair new" "cycle $i, patched"
	progress_check patched

	# Disable and wait: the old pair again.
	lp_ok revert "$PID" pair_fix
	[ "$LP_OUT" = "$DISABLED" ] || fail "cycle $i: revert printed '$LP_OUT'"
	expect_reply which "encode old decode old run_pair old" "cycle $i, reverted"
	progress_check

	# Revert at once: a reverse while the threads are still switching, or
	# a disable when they were all quicker.
	lp_ok apply --no-wait "$PID" "$PATCH"
	case $LP_OUT in
	"$ENABLED" | "$ENABLED; transition in progress") ;;
	*) fail "cycle $i: apply --no-wait printed '$LP_OUT'" ;;
	esac
	lp_ok revert "$PID" pair_fix
	[ "$LP_OUT" = "$DISABLED" ] || fail "cycle $i: revert printed '$LP_OUT'"
	assert_no_patches "cycle $i, after the quick revert"
	expect_reply which "encode old decode old run_pair old" "cycle $i, quick revert"
	progress_check

	# A certain reverse: a thread held inside the original run_pair(), its
	# value encoded in the old format, keeps the transition open.  The
	# others switch to the new pair meanwhile and must switch back.
	expect_reply hold held
	lp_ok apply --no-wait "$PID" "$PATCH"
	[ "$LP_OUT" = "$ENABLED; transition in progress" ] ||
		fail "cycle $i: apply --no-wait with a held thread printed '$LP_OUT'"
	expect_reply which "encode new decode new run_pair new" "cycle $i, in transition"
	progress_check patched
	lp_ok revert "$PID" pair_fix
	[ "$LP_OUT" = "$DISABLED" ] || fail "cycle $i: reverse printed '$LP_OUT'"
	assert_no_patches "cycle $i, after the reverse"
	expect_reply which "encode old decode old run_pair old" "cycle $i, reversed"
	expect_reply release "released old" "cycle $i: the held thread decoded in the old format"
	patch_log pair_fix
	[ "$(tail -n 7 <<<"$PLOG")" = "$REVERSED" ] ||
		fail "cycle $i: the log does not end with a reversed enable: $PLOG"
	progress_check

	if ((i % 10 == 0)); then
		log "cycle $i: $REPLY"
	fi
done

cmd stop
[[ $REPLY =~ \ mismatches\ 0\  ]] || fail "after stop: $REPLY"
assert_no_patches "after $CYCLES cycles"
same_bytes "$TARGETS/pairs" encode
same_bytes "$TARGETS/pairs" decode
same_bytes "$TARGETS/pairs" run_pair
stop_target

# --- without it: the same load must mix the formats -------------------------
LPATCH_TEST_NO_CONSISTENCY=1 start_target pairs
expect_reply "start $NTHREADS" started
progress_check
for ((i = 1; i <= UNSAFE_CYCLES; i++)); do
	lp_ok apply "$PID" "$PATCH"
	expect_reply which "encode new decode new run_pair new" "no consistency, cycle $i"
	lp_ok revert "$PID" pair_fix
	expect_reply which "encode old decode old run_pair old" "no consistency, cycle $i"
	pair_stats
	[ "$MISMATCHES" -eq 0 ] || break
done
[ "$MISMATCHES" -gt 0 ] ||
	fail "no mixed pair in $UNSAFE_CYCLES cycles without the consistency model: the" \
		"test cannot tell a consistent runtime from one that switches at once ($REPLY)"
log "without the consistency model: $REPLY after $i cycles"
cmd stop
stop_target
