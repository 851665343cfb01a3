#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 25-distro-libs: patch exported functions of unmodified Debian libraries
# whose first instructions must be relocated when displaced:
#   zlib's zlibVersion: lea 0x...(%rip),%rax; ret
#   libc's qsort:       xor %r8d,%r8d; jmp qsort_r
# (the script checks that the installed libraries still start like this).
. "$(dirname "$0")/lib.sh"

start_target demo
zlib=$(mapped_path libz.so.1) libc=$(mapped_path libc.so.6)
if [ -z "$zlib" ] || [ -z "$libc" ]; then
	fail "libz.so.1 or libc.so.6 not mapped in $PID"
fi

# first_insns LIB SYMBOL: the first two instructions of SYMBOL in LIB.
first_insns() {
	local addr
	addr=$(nm -D --defined-only "$1" |
		awk -v s="$2" '$3 == s || index($3, s "@@") == 1 { print $1; exit }')
	[ -n "$addr" ] || return 1
	objdump -d --no-show-raw-insn --start-address="0x$addr" "$1" |
		awk '/^ +[0-9a-f]+:/ { $1 = ""; print; if (++n == 2) exit }'
}
first_insns "$zlib" zlibVersion | head -n 1 | grep -q 'lea .*(%rip)' ||
	fail "zlibVersion no longer starts with a RIP-relative lea: $(first_insns "$zlib" zlibVersion)"
first_insns "$libc" qsort | tail -n 1 | grep -q 'jmp' ||
	fail "qsort no longer starts with xor; jmp: $(first_insns "$libc" qsort)"

# zlib (object "libz.so.1").
cmd zver
zver=$REPLY
[ -n "$zver" ] || fail "zlibVersion returned nothing"
apply zlib_fix
assert_patches zlib_fix
status_json
jq_true '.patches[0].objects[0] | .name == "libz.so.1" and .patched'
check_old_addr '.patches[0].objects[0].functions[0].old_addr' "$zlib" zlibVersion
expect_reply zver lpatch-zlib "zlibVersion patched"
revert zlib_fix
assert_no_patches
expect_reply zver "$zver" "zlibVersion reverted"
same_bytes "$zlib" zlibVersion

# libc (object "libc.so.6"); the patch reverses the order for the demo's
# comparator only.
expect_reply "sort 3 1 2 10 -4" "-4 1 2 3 10" "qsort before"
apply qsort_fix
assert_patches qsort_fix
status_json
jq_true '[.patches[0].objects[] | select(.name == "libc.so.6")] | length == 1 and .[0].patched'
# AddressSanitizer's qsort interceptor passes libc a comparator of its own,
# which the patch does not recognise: there only the redirect is checked.
if sanitized demo; then
	log "skipped under AddressSanitizer: the patched qsort's behaviour"
else
	expect_reply "sort 3 1 2 10 -4" "10 3 2 1 -4" "qsort patched"
fi
revert qsort_fix
assert_no_patches
expect_reply "sort 3 1 2 10 -4" "-4 1 2 3 10" "qsort reverted"
same_bytes "$libc" qsort
stop_target
