#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 50-bad-input: every kind of bad input gets a one-line error on stderr
# ("lpatch: ..."), a non-zero exit, and leaves the target unchanged
# (status --json shows no patch, compute behaves as before).
. "$(dirname "$0")/lib.sh"

start_target demo
expect_reply "call compute 5" 22

unchanged() {
	assert_no_patches "after: $1"
	expect_reply "call compute 5" 22 "after: $1"
}

# rejected WHAT ARGS...: `lpatch ARGS...` must fail cleanly.
rejected() {
	local what=$1
	shift
	log "--- $what"
	lp_fails "$@"
	unchanged "$what"
}

# A pid that belongs to no process.
nopid=$(($(cat /proc/sys/kernel/pid_max) - 1))
while [ -e "/proc/$nopid" ]; do nopid=$((nopid - 1)); done
rejected "unknown pid (apply)" apply "$nopid" "$PATCHES/fix.so"
rejected "unknown pid (status)" status --json "$nopid"
rejected "unknown pid (revert)" revert "$nopid" fix

rejected "missing patch file" apply "$PID" "$TMP/no-such-file.so"
rejected "no patch descriptor" apply "$PID" "$PATCHES/nodesc.so"
rejected "unresolvable function" apply "$PID" "$PATCHES/badfunc.so"
rejected "unresolvable symbol reference" apply "$PID" "$PATCHES/badsym.so"
rejected "wrong build-id" apply "$PID" "$PATCHES/badbuildid.so"
rejected "revert of a patch that is not there" revert "$PID" fix

# Another architecture: e_machine (offset 18) = 183, EM_AARCH64.
copy_patch fix aarch64
printf '\267\000' | dd of="$COPY" bs=1 seek=18 conv=notrunc status=none ||
	fail "cannot patch e_machine"
rejected "ELF of another architecture" apply "$PID" "$COPY"

# Not an ELF file at all.
head -c 8192 /dev/urandom >"$TMP/garbage.so"
chmod 0644 "$TMP/garbage.so"
rejected "garbage file" apply "$PID" "$TMP/garbage.so"

# Patch files others could have modified.
copy_patch fix group-writable
chmod g+w "$COPY"
rejected "group-writable patch" apply "$PID" "$COPY"
copy_patch fix world-writable
chmod o+w "$COPY"
rejected "world-writable patch" apply "$PID" "$COPY"

# A caller who is neither root nor the target's owner (uid 0): nobody.  It
# runs a copy of lpatch from the test's own directory and reads a copy of
# the patch there, so that only the runtime's permission check can refuse it.
chmod 0755 "$TMP"
copy_patch fix for-nobody
rejected "caller is not the owner (apply)" --as-nobody apply "$PID" "$COPY"
rejected "caller is not the owner (status)" --as-nobody status --json "$PID"

# After all that, the good patch still works.
apply fix
expect_reply "call compute 5" 500
revert fix
unchanged "apply and revert of the good patch"
stop_target
