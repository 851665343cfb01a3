#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 84-inject-debian: an unmodified program of the distribution, run straight
# from its package: cat (coreutils, on every Debian system), copying a fifo
# to a fifo.  apply injects the runtime into it while it waits in read(),
# and patches libc's write() (patch write_upper: what goes to standard
# output is upper-cased); revert takes it out again; cat ends normally when
# its input closes.  In a sanitizer build the runtime needs AddressSanitizer
# loaded first, and cat gets it preloaded, nothing else.
. "$(dirname "$0")/lib.sh"

# The path the package installs (/usr/bin is the same directory on Debian 12).
CAT=/bin/cat
require_built "$PATCHES/write_upper.so"
[ -x "$CAT" ] || skip "no $CAT"
if command -v dpkg >/dev/null; then
	log "$(dpkg -S "$CAT" 2>/dev/null || echo "$CAT: not from a package")"
fi

asan=$(ldd "$BUILD/src/runtime/liblpatch.so" | awk '$1 ~ /^libasan\.so/ { print $3 }')
if [ -n "$asan" ]; then
	lp_start cat env LD_PRELOAD="$asan" ASAN_OPTIONS=detect_leaks=0 "$CAT"
else
	lp_start cat "$CAT"
fi

expect_reply hello hello "cat before"
lp apply --verbose "$PID" "$PATCHES/write_upper.so"
[ "$LP_RC" -eq 0 ] || fail "apply exited $LP_RC: $LP_ERR"
log "$LP_ERR"
[ "$LP_OUT" = "patch 'write_upper' enabled (1 function in 1 object)" ] ||
	fail "apply printed '$LP_OUT'"
grep -q "^lpatch: injected the runtime into $PID through thread $PID (in read):" <<<"$LP_ERR" ||
	fail "apply did not inject the runtime through cat's thread: $LP_ERR"
expect_reply hello HELLO "cat patched"
expect_reply "some more lines" "SOME MORE LINES" "cat patched"
status_json
jq_true '.patches[0].objects[0] | .name == "libc.so.6" and .patched
	and .functions[0].name == "write" and .functions[0].patched' "libc's write patched"

revert write_upper
expect_reply hello hello "cat reverted"
assert_no_patches "reverted"

# End of input: cat exits 0.
fd_in=${LP_FD_IN[$PID]}
exec {fd_in}>&-
wait "$PID"
status=$?
[ "$status" -eq 0 ] || fail "cat exited with status $status"
