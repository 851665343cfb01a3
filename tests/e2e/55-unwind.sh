#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 55-unwind: unwinding keeps working through patched functions (C++ target
# "unwind", patch unwind_fix):
#   - pthread_cancel of a thread blocked in read() inside the new blocker()
#     unwinds the thread and runs its C++ destructors;
#   - a C++ exception thrown by a callback propagates through the new
#     call_cb() (plain C) to the caller's catch;
#   - backtrace() inside the new bt_probe() shows its caller bt_caller as
#     frame 1 and main further out, as without the patch.
. "$(dirname "$0")/lib.sh"

# AddressSanitizer aborts on pthread_cancel's unwinding of this C++ target
# (a CHECK in its stack bookkeeping) and its backtrace() sees no frames,
# with or without lpatch: a sanitizer build skips those checks, the plain
# build runs them.
if sanitized unwind; then
	check_cancel() { log "skipped under AddressSanitizer: cancel ($*)"; }
	check_bt() { log "skipped under AddressSanitizer: bt ($*)"; }
else
	check_cancel() { expect_reply cancel "$@"; }
	check_bt() { expect_reply bt "$@"; }
fi

start_target unwind

# Unpatched, the target does all of it by itself.
expect_reply "call_cb 5" 11 "call_cb before"
expect_reply "throw 7" "caught 7" "exception before"
check_cancel "cancelled O unwound 1" "cancellation before"
check_bt 3 "backtrace before"

apply unwind_fix
assert_patches unwind_fix
expect_reply "call_cb 5" 12 "call_cb patched"
expect_reply "throw 7" "caught 7" "exception through the patched call_cb"
expect_reply "throw -3" "caught -3" "exception through the patched call_cb"
check_cancel "cancelled P unwound 1" "cancellation inside the patched blocker"
check_bt 103 "backtrace inside the patched bt_probe"
# The same again: nothing was left broken by the first round.
check_cancel "cancelled P unwound 1" "second cancellation"
expect_reply "throw 9" "caught 9" "second exception"

revert unwind_fix
assert_no_patches
expect_reply "call_cb 5" 11 "call_cb reverted"
expect_reply "throw 7" "caught 7" "exception after revert"
check_cancel "cancelled O unwound 1" "cancellation after revert"
check_bt 3 "backtrace after revert"
for f in call_cb blocker bt_probe; do
	same_bytes "$TARGETS/unwind" "$f"
done
stop_target
