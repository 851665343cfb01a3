#!/bin/bash
# SPDX-License-Identifier: MIT
# test-timeout: 900
#
# 82-inject-churn: injection into a process whose threads loop in malloc()
# and free(), in dlopen() and dlclose() of libdemo.so and libz, in stdio,
# in pthread_create() and pthread_join(), and in the function to patch
# (stress/churn started without the runtime, patch stress/churn_fix), and
# two threads that block every signal, started before the runtime came:
# "nosig" calls churnval() in a loop, the "spinner" spins without calling
# it.
#   - the first apply injects the runtime into this and registers every
#     thread, the two that block signals among them;
#   - the spinner holds the transition up, reported as not answering
#     signals, and `lpatch force` completes it; once it stops spinning it
#     gets the new code;
#   - then apply and revert, round after round, while the threads churn:
#     each completes, every thread goes on, every result is the one the
#     state allows.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/churn.bash"

ROUNDS=${LP_INJECT_ROUNDS:-5}
FIX=churn_fix
FIXSO=$PATCHES/stress/$FIX.so
OLD5=16 NEW5=17 # churnval(5)

require_built "$FIXSO" "$TARGETS/libdemo.so"
start_plain stress/churn "$TARGETS/libdemo.so"
expect_reply "lib unpatched" "lib unpatched"
expect_reply start started
expect_reply nosig "nosig started"
expect_reply spin spinning

# --- Injected with the spinner spinning --------------------------------------
results old "before"
results any
# The threads that ran before the runtime came (the spawn thread's children
# come and go: one starting or exiting is rightly unknown for a moment).
before=$(task_ids | paste -sd, -)
lp apply --verbose --no-wait "$PID" "$FIXSO"
[ "$LP_RC" -eq 0 ] || fail "apply exited $LP_RC: $LP_ERR"
log "$LP_ERR"
grep -q "^lpatch: injected the runtime into $PID " <<<"$LP_ERR" ||
	fail "apply did not inject the runtime: $LP_ERR"
wait_until "the spinner to be reported pending, not answering signals" spinner_reported
wait_until "every thread but the spinner to switch" only_spinner_pending
jq_true "[$before] as \$old | all(.threads[] | select(.tid as \$t | \$old | index(\$t));
	.state != \"unknown\") and
	any(.threads[]; .name == \"nosig\" and .state == \"patched\")" \
	"every thread that ran before known, the nosig thread switched"
lp_ok force "$PID"
all_idle "forced"
expect_reply unspin "unspun $NEW5" "the spinner after force"
results new "forced"
results any
lp_ok revert --timeout 30 "$PID" "$FIX"
results old "reverted"
assert_no_patches "reverted"
all_idle "reverted"

# --- Rounds, with a copy: the forced patch's code is never unloaded ---------
copy_patch "stress/$FIX" churn_again
for ((i = 1; i <= ROUNDS; i++)); do
	results any
	lp_ok apply --timeout 30 "$PID" "$COPY"
	results new "round $i, applied"
	assert_patches churn_again
	expect_reply "call 5" $NEW5 "round $i, applied"
	results any
	lp_ok revert --timeout 30 "$PID" churn_again
	results old "round $i, reverted"
	assert_no_patches "round $i, reverted"
	expect_reply "call 5" $OLD5 "round $i, reverted"
	stats_ok "round $i"
	log "round $i: $STATS"
done
all_idle "after $ROUNDS rounds"
wait_until "churn_again.so to be unloaded" not_mapped churn_again.so
stop_target
