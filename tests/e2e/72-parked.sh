#!/bin/bash
# SPDX-License-Identifier: MIT
# test-timeout: 900
#
# 72-parked: transitions while threads are inside malloc, the dynamic
# loader (dlopen and dlclose of libdemo.so, over and over), stdio, thread
# start-up and the patched function (stress/churn, patch stress/churn_fix).
# The runtime's checks must neither deadlock nor crash there: every apply
# and revert completes, each thread keeps going, and every result is the
# one the state allows (the patch's once apply returned, the original's
# once revert returned).  With LP_CHURN_LIB=1 the patch is
# stress/churn_lib_fix, which also replaces libdemo.so's demo_lib_value():
# every load of the library must then be patched as it comes, and
# unpatched as it goes, in the middle of the transitions.
#
# Then threads that block every signal, which the runtime cannot look at:
#   - one that keeps calling churnval() migrates by itself when it enters it;
#   - one that spins without calling it is reported pending ("does not
#     answer signals") and holds the transition open, alone, until it calls
#     churnval(), where it switches before the call is dispatched;
#   - and `lpatch force` completes such a transition instead.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/churn.bash"

ROUNDS=${LP_CHURN_ROUNDS:-20}
if [ "${LP_CHURN_LIB:-0}" = 1 ]; then
	FIX=churn_lib_fix LIB=patched
else
	FIX=churn_fix LIB=unpatched
fi
FIXSO=$PATCHES/stress/$FIX.so
OLD5=16 NEW5=17 # churnval(5)

require_built "$FIXSO" "$TARGETS/libdemo.so"
start_target stress/churn "$TARGETS/libdemo.so"
expect_reply "lib $LIB" "lib $LIB"
expect_reply start started

# ms_since T0: milliseconds since T0 (date +%s%N), for the log only.
ms_since() {
	echo $((($(date +%s%N) - $1) / 1000000))
}

# --- Apply and revert while the churn threads run ---------------------------
results old "before"
stats_ok "before"
log "before: $STATS"
first_stats=$STATS

for ((i = 1; i <= ROUNDS; i++)); do
	results any
	t0=$(date +%s%N)
	lp_ok apply --timeout 30 "$PID" "$FIXSO"
	t_apply=$(ms_since "$t0")
	results new "round $i, applied"
	assert_patches "$FIX"
	expect_reply "call 5" $NEW5 "round $i, applied"

	results any
	t0=$(date +%s%N)
	lp_ok revert --timeout 30 "$PID" "$FIX"
	t_revert=$(ms_since "$t0")
	results old "round $i, reverted"
	assert_no_patches "round $i, reverted"
	expect_reply "call 5" $OLD5 "round $i, reverted"
	log "round $i: apply ${t_apply} ms, revert ${t_revert} ms"
done
stats_ok "after $ROUNDS rounds"
log "after $ROUNDS rounds: $STATS (before: $first_stats)"
all_idle "after $ROUNDS rounds"
wait_until "$FIX.so to be unloaded after the last revert" not_mapped "$FIX.so"

# --- (a) A thread that blocks every signal and calls churnval() -------------
expect_reply nosig "nosig started"
churn_status
jq_true 'any(.threads[]; .name == "nosig")' "the nosig thread is listed"
results old "nosig running"
results any
lp_ok apply --timeout 30 "$PID" "$FIXSO"
results new "applied with nosig running"
all_idle "applied with nosig running"
results any
lp_ok revert --timeout 30 "$PID" "$FIX"
results old "reverted with nosig running"
all_idle "reverted with nosig running"

# --- (b) A thread that blocks every signal and never calls churnval() -------
expect_reply spin spinning
results any
lp_ok apply --no-wait "$PID" "$FIXSO"
wait_until "the spinner to be reported pending, not answering signals" spinner_reported
log "spinner: $(jq -c '.threads[] | select(.name == "spinner")' <<<"$STATUS")"
wait_until "every thread but the spinner to switch" only_spinner_pending
jq_true ".transition.patch == \"$FIX\" and .transition.target == \"patched\"
	and .transition.threads_total >= 10" "transition in progress, held by the spinner"
# Entering churnval() with a clean stack, it switches first: the new code.
expect_reply unspin "unspun $NEW5" "the spinner's first call after it stopped"
wait_until "the transition to complete once the spinner called churnval()" settled
assert_patches "$FIX"
all_idle "spinner migrated"
results new "spinner migrated"
# Blocked in read() with every signal blocked, it is checked from /proc.
results any
lp_ok revert --timeout 30 "$PID" "$FIX"
results old "reverted with the spinner blocked in read()"
all_idle "reverted with the spinner blocked in read()"

# --- (b') The same, completed by force --------------------------------------
expect_reply spin spinning
results any
lp_ok apply --no-wait "$PID" "$FIXSO"
wait_until "the spinner to be reported pending again" spinner_reported
lp_ok force "$PID"
status_json
jq_true ".transition == null and (.patches | length) == 1 and
	(.patches[0] | .name == \"$FIX\" and .enabled and .forced and (.transition | not))" \
	"forced: complete, the patch flagged forced"
all_idle "forced"
expect_reply unspin "unspun $NEW5" "the spinner after force"
results new "forced"
results any
lp_ok revert --timeout 30 "$PID" "$FIX"
results old "forced patch reverted"
assert_no_patches "forced patch reverted"
# A forced patch's code is never unloaded: a thread may still run it.  A
# copy under another name, applied and reverted now, is unloaded: by then
# the forced one would have been too.
copy_patch "stress/$FIX" "${FIX}_again"
results any
lp_ok apply --timeout 30 "$PID" "$COPY"
results new "${FIX}_again applied"
results any
lp_ok revert --timeout 30 "$PID" "${FIX}_again"
results old "${FIX}_again reverted"
wait_until "${FIX}_again.so to be unloaded" not_mapped "${FIX}_again.so"
mapped "$FIX.so" || fail "the forced patch's $FIX.so was unloaded"

stats_ok "at the end"
log "at the end: $STATS"
stop_target
