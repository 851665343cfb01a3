#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 62-blocked: the consistency model holds back a thread that sleeps inside
# the function being replaced.  demo's "block" parks a thread inside the
# original compute(); fix (compute = x * 100) is enabled without waiting.
# The main thread switches and gets the new code while the parked thread
# stays pending on compute, is reported as such, and finishes the old
# code; the transition completes only once it has left compute().
. "$(dirname "$0")/lib.sh"

start_target demo
expect_reply "call compute 5" 22 "before the patch"

# A request first, so that every thread of the runtime exists before we
# look for the one "block" creates.
assert_no_patches "fresh process"
before=$(task_ids)
expect_reply block blocked # inside the original compute(), in read()
new_thread "$before"
parked=$NEW_TID

lp_ok apply --no-wait "$PID" "$PATCHES/fix.so"
[ "$LP_OUT" = "patch 'fix' enabled (1 function in 1 object); transition in progress" ] ||
	fail "apply --no-wait printed '$LP_OUT'"

status_json
jq_true '.transition.patch == "fix" and .transition.target == "patched"' \
	"fix in a patching transition"
jq_true '.patches | length == 1 and (.[0] | .name == "fix" and .enabled
	and .transition and (.forced | not))' "patch fields during the transition"
jq_true '.patches[0].objects[0].functions[0] | .name == "compute" and .transition' \
	"compute is part of the transition"

# The main thread has nothing of compute() on its stack: it switches (at
# the latest when it enters compute) and gets the new code at once, while
# the parked thread still runs the old one.
expect_reply "call compute 5" 500 "main thread, during the transition"
expect_reply "call compute 0" 0 "main thread, during the transition"

# Every other thread switches without help; only the parked one cannot.
only_parked_pending() {
	status_has --threads "[.threads[] | select(.pending) | .tid] == [$parked]"
}
wait_until "thread $parked to be the only one pending" only_parked_pending
jq_true ".transition.patch == \"fix\" and .transition.threads_pending == 1
	and .transition.threads_total >= 2" "transition counts"
jq_true "[.threads[].tid] | index($PID) != null and index($parked) != null" \
	"the main and the parked thread are listed"
jq_true ".threads[] | select(.tid == $parked) | .state == \"unpatched\" and .pending
	and .blocking_function == \"compute\"
	and (.reason | type == \"string\" and contains(\"compute\"))" \
	"the parked thread is held back by compute"
jq_true ".threads[] | select(.tid == $PID) | .state == \"patched\"
	and (.pending | not) and .blocking_function == null" \
	"the main thread has switched"
jq_true "all(.threads[] | select(.tid != $parked);
	(.pending | not) and .blocking_function == null)" \
	"no other thread is held back"

# The human form names the parked thread and what it sleeps on.
lp_ok status --threads "$PID"
grep -Eq "(^|[^0-9])$parked([^0-9].*)?compute" <<<"$LP_OUT" ||
	fail "status --threads does not show thread $parked on compute: $LP_OUT"

# The parked thread was inside the original: it finishes it (compute(-1):
# park_here gives 1, then 1 * 3 + 7), and only then can it switch.
expect_reply release "released 10" "the parked thread finished the original compute()"
wait_until "the transition to complete" no_transition
assert_patches fix
status_threads_json
jq_true "all(.threads[]; .state == \"idle\" and (.pending | not)
	and .blocking_function == null)" "every thread idle after the transition"
jq_true "[.threads[].tid] | index($parked) == null" "the parked thread is gone"
expect_reply "call compute 5" 500 "patched"

# The transition completed by itself: no signal, no force, no reverse.
log_is "$(enable_transcript fix)"

revert fix
assert_no_patches "after revert"
expect_reply "call compute 5" 22 "after revert"
same_bytes "$TARGETS/demo" compute
log_is "$(apply_revert_transcript fix)"
stop_target
