# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# lib.sh - shared helpers of the end-to-end tests; each tests/e2e/NN-*.sh
# sources it.  A test exits 0 (pass), 77 (skip) or anything else (fail);
# tests/run runs them.
#
# Targets (tests/targets) are driven over fifos, never with sleeps:
#
#   start_target demo          # runs `lpatch run -- $TARGETS/demo`, waits
#                              # for its "ready"; sets PID (the target's pid)
#   expect_reply "call compute 5" "22"
#   lp_ok apply "$PID" "$PATCHES/fix.so"     # LP_OUT / LP_ERR / LP_RC
#   lp_fails apply "$PID" "$TMP/bad.so"      # non-zero, one "lpatch: " line
#   stop_target                # "quit" -> "bye", exit status 0
#
# Several targets: start_target sets PID to the new one; cmd and friends
# talk to the target whose pid is in PID, so save and restore it.

set -u
set -o pipefail

LP_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${LPATCH_BUILD:-$LP_REPO/build}
case $BUILD in
/*) ;;
*) BUILD=$LP_REPO/$BUILD ;;
esac
LPATCH=$BUILD/src/cli/lpatch
TARGETS=$BUILD/tests/targets
# Under AddressSanitizer (GCC 12), the __tls_get_addr() interceptor guesses
# a dynamic TLS block's bounds from a header glibc 2.19 had: a block that
# malloc() placed 16 bytes into a page gets bogus ones, and the leak checker
# then crashes at exit.  Dynamic TLS is what an injected runtime's libraries
# use.  No test keeps its only pointer to memory in dynamic TLS.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}intercept_tls_get_addr=0
PATCHES=$BUILD/tests/patches
TOOLS=$BUILD/tests/tools

# Seconds to wait for one reply line of a target or one lpatch command.
LP_REPLY_TIMEOUT=${LP_REPLY_TIMEOUT:-20}
LP_CMD_TIMEOUT=${LP_CMD_TIMEOUT:-120}

LP_TEST=$(basename "$0" .sh)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lpatch-$LP_TEST.XXXXXX") || exit 1
LP_NTARGETS=0
declare -a LP_PIDS=()
declare -A LP_FD_IN=() LP_FD_OUT=() LP_ERRFILE=() LP_NAME=()
PID=
REPLY=

# A target that died must make our writes fail, not kill the script.
trap '' PIPE

lp_cleanup() {
	local pid
	for pid in "${LP_PIDS[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
		fi
	done
	rm -rf "$TMP"
}
trap 'rc=$?; lp_cleanup; exit $rc' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() {
	printf '%s\n' "$*"
}

# Show what helps to understand a failure: the target's stderr and log.
lp_dump_target() {
	local pid=$1 status
	[ -n "$pid" ] || return 0
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null
		status=$?
		if [ "$status" -gt 128 ]; then
			echo "--- target ${LP_NAME[$pid]:-?} ($pid) was killed by signal $((status - 128)) ($(kill -l "$status" 2>/dev/null))"
		else
			echo "--- target ${LP_NAME[$pid]:-?} ($pid) exited with status $status"
		fi
	fi
	if [ -n "${LP_ERRFILE[$pid]:-}" ] && [ -s "${LP_ERRFILE[$pid]}" ]; then
		echo "--- stderr of target ${LP_NAME[$pid]} ($pid), last lines:"
		tail -n 15 "${LP_ERRFILE[$pid]}"
	fi
	if [ -x "$LPATCH" ] && kill -0 "$pid" 2>/dev/null; then
		echo "--- lpatch log $pid:"
		timeout 10 "$LPATCH" log "$pid" 2>&1 | tail -n 15
	fi
}

# fail MESSAGE: the test fails.  Never call it inside $(...).
fail() {
	echo "FAIL: $LP_TEST: $*" >&2
	lp_dump_target "$PID" >&2
	exit 1
}

# skip REASON: the test cannot run here (exit 77).
skip() {
	echo "SKIP: $LP_TEST: $*" >&2
	exit 77
}

# Fail early with a clear message when the build lacks something we need.
require_built() {
	local f
	for f in "$LPATCH" "$@"; do
		[ -x "$f" ] || [ -f "$f" ] || fail "not built: $f (build first: ninja -C $BUILD)"
	done
}

# start_target NAME [ARGS...]: start $TARGETS/NAME under `lpatch run`, its
# stdin and stdout on fifos, and wait for "ready".  Sets PID.
start_target() {
	require_built "$TARGETS/$1"
	lp_start "$1" "$LPATCH" run -- "$TARGETS/$1" "${@:2}"
	lp_read_reply "start of $1"
	[ "$REPLY" = ready ] || fail "$1: expected 'ready', got '$REPLY'"
}

# start_plain NAME [ARGS...]: the same without the runtime, for `apply` to
# inject it.  A target whose PID names an agent socket already (one a
# leftover child of an earlier process holds) is started again: its runtime
# could not listen there.
start_plain() {
	local tries
	require_built "$TARGETS/$1"
	for ((tries = 0; tries < 10; tries++)); do
		lp_start "$1" "$TARGETS/$1" "${@:2}"
		lp_read_reply "start of $1"
		[ "$REPLY" = ready ] || fail "$1: expected 'ready', got '$REPLY'"
		grep -q "@lpatch/$PID\$" /proc/net/unix || return 0
		log "the agent socket name of $PID is taken: starting $1 again"
		stop_plain_target
	done
	fail "$1: every PID it got names an agent socket already"
}

# stop_plain_target: end target $PID by closing its input (no reply awaited).
stop_plain_target() {
	local fd_in=${LP_FD_IN[$PID]} fd_out=${LP_FD_OUT[$PID]}
	exec {fd_in}>&- {fd_out}<&-
	kill -KILL "$PID" 2>/dev/null
	wait "$PID" 2>/dev/null
}

# lp_start NAME COMMAND...: run COMMAND with its stdin and stdout on fifos,
# known as NAME; no reply is awaited.  Sets PID.
lp_start() {
	local name=$1 n fd_in fd_out
	shift
	n=$((++LP_NTARGETS))
	mkfifo "$TMP/t$n.in" "$TMP/t$n.out" || fail "mkfifo failed"
	# The target opens its stdin fifo, then its stdout fifo; we open
	# them in the same order, so neither side waits for the other.
	"$@" <"$TMP/t$n.in" >"$TMP/t$n.out" 2>"$TMP/t$n.err" &
	PID=$!
	LP_PIDS+=("$PID")
	exec {fd_in}>"$TMP/t$n.in" {fd_out}<"$TMP/t$n.out"
	LP_FD_IN[$PID]=$fd_in
	LP_FD_OUT[$PID]=$fd_out
	LP_ERRFILE[$PID]=$TMP/t$n.err
	LP_NAME[$PID]=$name
}

# Read one reply line of target $PID into REPLY.
lp_read_reply() {
	local what=$1 rc status i
	REPLY=
	IFS= read -r -t "$LP_REPLY_TIMEOUT" REPLY <&"${LP_FD_OUT[$PID]}"
	rc=$?
	[ "$rc" -eq 0 ] && return 0
	if [ "$rc" -gt 128 ]; then
		fail "${LP_NAME[$PID]} ($PID): no reply to '$what' within ${LP_REPLY_TIMEOUT}s"
	fi
	# End of file: the target is gone (or going); report how it ended.
	status="none yet"
	for ((i = 0; i < 50; i++)); do
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	if ! kill -0 "$PID" 2>/dev/null; then
		wait "$PID" 2>/dev/null
		status=$?
		[ "$status" -le 128 ] || status="$status, signal $((status - 128))"
	fi
	fail "${LP_NAME[$PID]} ($PID) closed its output on '$what' (exit status: $status)"
}

# cmd LINE: send LINE to target $PID and read its one-line answer into REPLY.
cmd() {
	printf '%s\n' "$1" >&"${LP_FD_IN[$PID]}" ||
		fail "${LP_NAME[$PID]} ($PID): cannot send '$1' (target gone?)"
	lp_read_reply "$1"
}

# expect_reply LINE EXPECTED [WHY]
expect_reply() {
	cmd "$1"
	[ "$REPLY" = "$2" ] ||
		fail "${3:+$3: }'$1' answered '$REPLY', expected '$2'"
}

# stop_target: "quit", expect "bye", and the target must exit with status 0.
stop_target() {
	local status fd_in=${LP_FD_IN[$PID]} fd_out=${LP_FD_OUT[$PID]}
	expect_reply quit bye
	exec {fd_in}>&- {fd_out}<&-
	wait "$PID"
	status=$?
	[ "$status" -eq 0 ] || fail "${LP_NAME[$PID]} ($PID) exited with status $status"
}

# lp [--as-nobody] ARGS...: run lpatch; sets LP_RC, LP_OUT, LP_ERR.
lp() {
	local -a wrap=(timeout "$LP_CMD_TIMEOUT")
	local cli=$LPATCH
	if [ "${1:-}" = --as-nobody ]; then
		shift
		wrap+=(setpriv --reuid=65534 --regid=65534 --clear-groups)
		# The build tree may sit below a directory only root can enter.
		cli=$TMP/lpatch-for-nobody
		[ -x "$cli" ] || install -m 0755 "$LPATCH" "$cli" || fail "cannot copy $LPATCH"
	fi
	"${wrap[@]}" "$cli" "$@" >"$TMP/lp.out" 2>"$TMP/lp.err"
	LP_RC=$?
	LP_OUT=$(cat "$TMP/lp.out")
	LP_ERR=$(cat "$TMP/lp.err")
	[ "$LP_RC" -ne 124 ] || fail "lpatch $* did not finish within ${LP_CMD_TIMEOUT}s"
}

# lp_ok ARGS...: lpatch must succeed (exit 0) with nothing on stderr.
lp_ok() {
	lp "$@"
	[ "$LP_RC" -eq 0 ] ||
		fail "lpatch $* exited $LP_RC: ${LP_ERR:-(no stderr)}"
	[ -z "$LP_ERR" ] || fail "lpatch $* succeeded but wrote to stderr: $LP_ERR"
}

# lp_fails [--as-nobody] ARGS...: lpatch must fail with a non-zero exit and
# exactly one stderr line starting "lpatch: ".
lp_fails() {
	lp "$@"
	[ "$LP_RC" -ne 0 ] || fail "lpatch $* succeeded, expected a failure"
	[ "$LP_RC" -lt 124 ] || fail "lpatch $* died (exit $LP_RC): $LP_ERR"
	if [ "$(wc -l <"$TMP/lp.err")" -ne 1 ] || [ -z "$LP_ERR" ]; then
		fail "lpatch $*: expected one line on stderr, got: '$LP_ERR'"
	fi
	case $LP_ERR in
	"lpatch: "?*) ;;
	*) fail "lpatch $*: stderr does not start with 'lpatch: ': $LP_ERR" ;;
	esac
	log "refused as expected (exit $LP_RC): $LP_ERR"
}

# apply PATCH [OPTIONS...]: apply $PATCHES/PATCH.so to $PID, must succeed.
apply() {
	local patch=$1
	shift
	lp_ok apply "$@" "$PID" "$PATCHES/$patch.so"
}

# revert NAME: revert patch NAME in $PID, must succeed.
revert() {
	lp_ok revert "$PID" "$1"
}

# status_json: `lpatch status --json $PID` into STATUS (valid JSON).
status_json() {
	lp_ok status --json "$PID"
	STATUS=$LP_OUT
	printf '%s' "$STATUS" | jq -e . >/dev/null ||
		fail "status --json is not valid JSON: $STATUS"
}

# status_is FILTER: FILTER is true of STATUS (false otherwise, no failure).
status_is() {
	printf '%s' "$STATUS" | jq -e "$1" >/dev/null
}

# jq_true FILTER [WHY]: FILTER applied to the last STATUS must be true.
jq_true() {
	printf '%s' "$STATUS" | jq -e "$1" >/dev/null ||
		fail "${2:-status check} failed: jq '$1' on: $(printf '%s' "$STATUS" | jq -c .)"
}

# jq_get FILTER: print FILTER applied to STATUS (raw).
jq_get() {
	printf '%s' "$STATUS" | jq -r "$1"
}

# assert_no_patches [WHY]: the target has no patch at all.
assert_no_patches() {
	status_json
	jq_true '.patches == [] and .transition == null' "${1:-no patches}"
}

# assert_patches NAME...: the target has exactly these patches, in order,
# all enabled and none in transition.
assert_patches() {
	local want
	want=$(printf '%s\n' "$@" | jq -R . | jq -sc .)
	status_json
	jq_true "[.patches[].name] == $want" "patches are $want"
	jq_true '.transition == null and all(.patches[]; .enabled and (.transition | not))' \
		"patches enabled, no transition"
}

# log_is EXPECTED: `lpatch log $PID` must print exactly EXPECTED.
log_is() {
	lp_ok log "$PID"
	[ "$LP_OUT" = "$1" ] || fail "unexpected event log:
--- expected:
$1
--- got:
$LP_OUT"
}

# The log of one apply and one revert of patch $1 in a fresh process.
apply_revert_transcript() {
	cat <<EOF
lpatch: enabling patch '$1'
lpatch: '$1': initializing patching transition
lpatch: '$1': starting patching transition
lpatch: '$1': completing patching transition
lpatch: '$1': patching complete
lpatch: '$1': initializing unpatching transition
lpatch: '$1': starting unpatching transition
lpatch: '$1': completing unpatching transition
lpatch: '$1': unpatching complete
EOF
}

# same_bytes FILE SYMBOL [SYMPOS]: the function's bytes in target $PID equal
# those of FILE (nothing of a patch is left).
same_bytes() {
	require_built "$TOOLS/lp-test-sym"
	"$TOOLS/lp-test-sym" cmp "$PID" "$@" >"$TMP/sym.out" 2>&1 ||
		fail "$2 in $PID differs from $1: $(cat "$TMP/sym.out")"
}

# sym_addr FILE SYMBOL [SYMPOS]: print the symbol's run-time address in $PID.
sym_addr() {
	"$TOOLS/lp-test-sym" addr "$PID" "$@"
}

# check_old_addr JQ_PATH FILE SYMBOL [SYMPOS]: the address (a "0x..."
# string) at JQ_PATH in STATUS is SYMBOL's run-time address in $PID.
check_old_addr() {
	local got want path=$1
	shift
	got=$(jq_get "$path")
	want=$(sym_addr "$@") || fail "cannot find $2 in $1"
	if ! [[ $got =~ ^0x[0-9a-fA-F]+$ ]] || [ $((got)) -ne $((want)) ]; then
		fail "$path is '$got', expected $want ($2)"
	fi
}

# mapped_path NAME: the file the target $PID maps for library NAME (its
# soname, e.g. libz.so.1, mapped as .../libz.so.1.2.13), from its maps.
mapped_path() {
	awk -v lib="$1" '{
		n = split($6, part, "/")
		if (n > 1 && (part[n] == lib || index(part[n], lib ".") == 1)) {
			print $6
			exit
		}
	}' "/proc/$PID/maps"
}

# wait_until WHAT COMMAND...: poll a condition (not a timing assumption:
# the state it waits for is certain to come) for at most 30 s.
wait_until() {
	local what=$1 i
	shift
	for ((i = 0; i < 300; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	fail "timed out waiting for: $what"
}

# copy_patch PATCH COPYNAME: copy $PATCHES/PATCH.so to $TMP/COPYNAME.so
# (mode 0644, owned by us); sets COPY to its path.
copy_patch() {
	COPY=$TMP/$2.so
	{ cp "$PATCHES/$1.so" "$COPY" && chmod 0644 "$COPY"; } ||
		fail "cannot copy $1.so"
}

require_built
command -v jq >/dev/null || fail "jq is not installed (scripts/setup installs it)"

# sanitized TARGET: the target was built with AddressSanitizer, whose
# interceptors change what some checks observe even without lpatch.
sanitized() {
	ldd "$TARGETS/$1" | grep -q libasan
}

# --- Helpers of the consistency-model tests (62-68) ------------------------

# status_threads_json: `lpatch status --json --threads $PID` into STATUS.
status_threads_json() {
	lp_ok status --json --threads "$PID"
	STATUS=$LP_OUT
	printf '%s' "$STATUS" | jq -e . >/dev/null ||
		fail "status --json --threads is not valid JSON: $STATUS"
}

# status_has [--threads] FILTER: a fresh status of $PID (kept in STATUS)
# makes FILTER true.  Returns false rather than failing: for wait_until.
status_has() {
	if [ "$1" = --threads ]; then
		shift
		status_threads_json
	else
		status_json
	fi
	printf '%s' "$STATUS" | jq -e "$1" >/dev/null
}

# no_transition: no transition is in progress in $PID (for wait_until).
no_transition() {
	status_has '.transition == null'
}

# task_ids: the IDs of the threads of $PID, one per line.
task_ids() {
	ls "/proc/$PID/task"
}

# new_thread BEFORE: exactly one thread of $PID is not among BEFORE (what
# task_ids printed earlier); sets NEW_TID to its ID.
new_thread() {
	local ids
	ids=$(task_ids | awk -v before="$1" '
		BEGIN { n = split(before, b, "\n"); for (i = 1; i <= n; i++) old[b[i]] = 1 }
		!($0 in old)')
	[[ $ids =~ ^[0-9]+$ ]] ||
		fail "expected one new thread in $PID, found: '$(printf '%s' "$ids" | tr '\n' ' ')'"
	# shellcheck disable=SC2034 # the tests read it
	NEW_TID=$ids
}

# maps_file FILE: $PID maps a file whose name is FILE (e.g. fix.so).
maps_file() {
	grep -q "/$1\$" "/proc/$PID/maps"
}

# patch_log NAME: the lines of `lpatch log $PID` of patch NAME's own steps
# ("enabling patch 'NAME'" and "'NAME': ...") into PLOG; other patches'
# lines, and whatever a refused request may log, are left out.
patch_log() {
	lp_ok log "$PID"
	PLOG=$(awk -v p="'$1'" '$0 == "lpatch: enabling patch " p ||
		index($0, "lpatch: " p ": ") == 1' <<<"$LP_OUT")
}

# patch_log_is NAME EXPECTED: patch_log NAME must be exactly EXPECTED.
patch_log_is() {
	patch_log "$1"
	[ "$PLOG" = "$2" ] || fail "unexpected event log of patch '$1':
--- expected:
$2
--- got:
$PLOG
--- whole log:
$LP_OUT"
}

# enable_transcript NAME / disable_transcript NAME: the log lines of an
# enable and of a disable of patch NAME that complete without help.
enable_transcript() {
	apply_revert_transcript "$1" | sed -n '1,5p'
}
disable_transcript() {
	apply_revert_transcript "$1" | sed -n '6,$p'
}
