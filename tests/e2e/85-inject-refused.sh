#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 85-inject-refused: what the injector refuses, or gives up on, with a
# one-line error and the process untouched:
#   - a statically linked program (no dynamic loader to load the runtime);
#   - a dynamically linked program without glibc (no libc.so.6);
#   - a runtime the dynamic loader refuses (a file that is not ELF, named by
#     LPATCH_RUNTIME): its error is reported, the process goes on;
#   - a process none of whose threads comes to a safe point: blocker's main
#     thread, waiting in ppoll() with a signal mask, is never borrowed;
#   - a process that exits while its borrowed thread is loading the runtime:
#     blocker's "holdloader" keeps another thread inside the dynamic loader,
#     so the borrowed thread waits for the loader's lock until the process
#     exits.
. "$(dirname "$0")/lib.sh"

require_built "$TARGETS/static" "$TARGETS/nolibc" "$TARGETS/blocker" "$TARGETS/libhold.so" \
	"$PATCHES/blocker_fix.so"

# refused PROGRAM WHY: apply to PROGRAM fails with WHY, and it goes on.
refused() {
	lp_start "$1" "$TARGETS/$1"
	lp_read_reply "start of $1"
	[ "$REPLY" = ready ] || fail "$1: expected 'ready', got '$REPLY'"
	lp_fails apply "$PID" "$PATCHES/fix.so"
	case $LP_ERR in
	*"cannot inject the runtime: $2"*) ;;
	*) fail "$1: apply did not say '$2': $LP_ERR" ;;
	esac
	! grep -q liblpatch "/proc/$PID/maps" || fail "$1: the runtime is mapped"
	! grep -q "^TracerPid:[[:space:]]*[1-9]" /proc/"$PID"/task/*/status ||
		fail "$1: a thread is still traced"
	expect_reply echo echo "$1 after the refusal"
	stop_plain
}

# stop_plain: end of input, exit status 0.
stop_plain() {
	local fd_in=${LP_FD_IN[$PID]} fd_out=${LP_FD_OUT[$PID]} status
	exec {fd_in}>&- {fd_out}<&-
	wait "$PID"
	status=$?
	[ "$status" -eq 0 ] || fail "${LP_NAME[$PID]} exited with status $status"
}

refused static "it is statically linked"
refused nolibc "it does not use glibc"

# --- A runtime the loader refuses ------------------------------------------
start_plain demo
echo "not a library" >"$TMP/bogus.so"
LPATCH_RUNTIME=$TMP/bogus.so lp_fails apply "$PID" "$PATCHES/fix.so"
case $LP_ERR in
*"cannot inject the runtime: the dynamic loader refused the runtime: $TMP/bogus.so: "*) ;;
*) fail "unexpected error: $LP_ERR" ;;
esac
! grep -q "bogus.so" "/proc/$PID/maps" || fail "the refused runtime is mapped"
expect_reply "call compute 5" 22 "after the loader refused the runtime"
lp_ok apply "$PID" "$PATCHES/fix.so"
expect_reply "call compute 5" 500 "patched after all"
stop_target

# --- No thread at a safe point ---------------------------------------------
start_plain blocker
lp_fails apply "$PID" "$PATCHES/blocker_fix.so"
case $LP_ERR in
*"cannot inject the runtime: no thread came to a point where it could load the runtime within "*" s: thread $PID (blocker): in a system call with its own signal mask") ;;
*) fail "unexpected error: $LP_ERR" ;;
esac
! grep -q liblpatch "/proc/$PID/maps" || fail "the runtime is mapped"
expect_reply stats "eintr 0" "ppoll() after the injector gave up"
expect_reply "call 5" 16 "after the injector gave up"
stop_target

# --- A process that exits during the injection ------------------------------
start_plain blocker
cmd "start read"
[[ $REPLY =~ ^started\ read\ ([0-9]+)$ ]] || fail "start read answered '$REPLY'"
reader=${BASH_REMATCH[1]}
expect_reply "holdloader $TARGETS/libhold.so" held
"$LPATCH" apply "$PID" "$PATCHES/blocker_fix.so" >"$TMP/apply.out" 2>"$TMP/apply.err" &
apply=$!

# in_loader: the reader was borrowed, and waits for the loader's lock.
in_loader() {
	grep -q "^TracerPid:[[:space:]]*$apply\$" "/proc/$PID/task/$reader/status" 2>/dev/null &&
		[ "$(cut -d' ' -f1 "/proc/$PID/task/$reader/syscall" 2>/dev/null)" = 202 ]
}
wait_until "the reader to be borrowed and wait inside the loader" in_loader
expect_reply exit exiting
wait "$PID"
wait "$apply"
rc=$?
err=$(cat "$TMP/apply.err")
log "apply: exit $rc: $err"
[ "$rc" -eq 1 ] || fail "apply exited $rc, expected 1: $err"
[ "$(wc -l <"$TMP/apply.err")" -eq 1 ] || fail "apply printed more than one line: $err"
case $err in
"lpatch: apply $PATCHES/blocker_fix.so to $PID: cannot inject the runtime: the process exited while it loaded the runtime") ;;
*) fail "unexpected error: $err" ;;
esac
[ ! -s "$TMP/apply.out" ] || fail "apply printed on stdout: $(cat "$TMP/apply.out")"
