#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 45-unpatchable: functions lpatch cannot patch safely are refused with the
# reason, and the target is unchanged: no patch in status, same behaviour,
# same bytes, and the event log has one line saying why.
#   too_short  3 bytes: xor %eax,%eax; ret
#   loop_back  a loop whose branch goes back to offset 2
#   use_secret a replacement that changes registers callers of the original
#              may count on (-fipa-ra): symref without LP_PRESERVE_REGISTERS
. "$(dirname "$0")/lib.sh"

# refused PATCH FUNCTION REASON_REGEX: a fresh target refuses PATCH.
refused() {
	start_target demo
	cmd "call $2 5"
	local before=$REPLY
	lp_fails apply "$PID" "$PATCHES/$1.so"
	assert_no_patches "after refusing $1"
	expect_reply "call $2 5" "$before" "$2 unchanged"
	same_bytes "$TARGETS/demo" "$2"
	lp_ok log "$PID"
	if [ "$(printf '%s\n' "$LP_OUT" | wc -l)" -ne 1 ] ||
		! grep -Eiq "^lpatch: '$1': .*($3)" <<<"$LP_OUT"; then
		fail "expected one log line saying why $1 was refused (/$3/), got: $LP_OUT"
	fi
	log "log: $LP_OUT"
	stop_target
}

refused short_fix too_short 'short|small|size|bytes'
refused loop_fix loop_back 'branch|jump|jmp|displaced|loop'
# Built with AddressSanitizer, use_secret calls the sanitizer's checks, which
# may change every register: its callers count on none, nothing to refuse.
if sanitized demo; then
	log "skipped under AddressSanitizer: symref_plain"
else
	refused symref_plain use_secret 'leaving rcx, rdx, rsi, r8, r9, r10, r11 unchanged .*LP_PRESERVE_REGISTERS'
fi
