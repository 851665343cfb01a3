#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 86-inject-fork: a process the runtime was injected into forks and
# executes programs as before (tests/targets/blocker, patch blocker_fix):
#   - a forked child keeps the patch (blockval(5) is 17 in it);
#   - a child that executes a program starts clean: no runtime mapped, the
#     original code (16), and it exits normally;
#   - after revert, a forked child has the original code again;
#   - the parent goes on answering throughout.
. "$(dirname "$0")/lib.sh"

require_built "$TARGETS/blocker" "$PATCHES/blocker_fix.so"
start_plain blocker
# A thread to borrow: blocker's main thread waits where none is borrowed.
cmd "start read"
[[ $REPLY =~ ^started\ read\ [0-9]+$ ]] || fail "start read answered '$REPLY'"
expect_reply fork "child 16" "fork before the injection"
expect_reply forkexec "exec clean 16 status 0" "fork and exec before the injection"

lp apply --verbose "$PID" "$PATCHES/blocker_fix.so"
[ "$LP_RC" -eq 0 ] || fail "apply exited $LP_RC: $LP_ERR"
grep -q "^lpatch: injected the runtime into $PID " <<<"$LP_ERR" ||
	fail "apply did not inject the runtime: $LP_ERR"
expect_reply "call 5" 17 "patched"

for i in 1 2 3; do
	expect_reply fork "child 17" "fork $i of the injected process"
	expect_reply forkexec "exec clean 16 status 0" "fork and exec $i of the injected process"
done
expect_reply "call 5" 17 "the parent after its children"
status_threads_json
jq_true '.transition == null and all(.threads[]; .state == "idle")' "the parent settled"

revert blocker_fix
expect_reply fork "child 16" "fork after revert"
expect_reply forkexec "exec clean 16 status 0" "fork and exec after revert"
expect_reply "call 5" 16 "reverted"
expect_reply "feed read" "fed read"
expect_reply "result read" "read ok hello" "the borrowed thread's read"
stop_target
