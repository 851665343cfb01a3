#!/bin/bash
# SPDX-License-Identifier: MIT
# test-timeout: 600
#
# 87-apply-all: one apply to many processes.
#   - `apply --all` with a patch pinned to this build's demo (all_fix)
#     selects the 50 demo processes started without the runtime and one
#     started with it, not a demo-nopie (another build-id, the same
#     functions) nor anything else on the machine; it injects the runtime
#     into the 50, patches all 51 in parallel, and reports each in a table;
#   - again with --json once they are reverted: 51 entries, none injected;
#   - several PIDs, one of them gone: the others are patched, the table
#     says which failed, and the exit status and stderr say that one did;
#     with --quiet, nothing is printed when every apply succeeds.
. "$(dirname "$0")/lib.sh"

N=${LP_ALL_PROCESSES:-50}
require_built "$PATCHES/all_fix.so" "$PATCHES/stack_p1.so" "$TARGETS/demo-nopie"

declare -a PLAIN=()
for ((i = 0; i < N; i++)); do
	start_plain demo
	PLAIN+=("$PID")
done
start_target demo
PRELOADED=$PID
start_plain demo-nopie
NOPIE=$PID
ALL=$(printf '%s\n' "${PLAIN[@]}" "$PRELOADED" | sort -n | tr '\n' ' ')

lp apply --all "$PATCHES/all_fix.so"
[ "$LP_RC" -eq 0 ] || fail "apply --all exited $LP_RC: $LP_ERR"
[ -z "$LP_ERR" ] || fail "apply --all wrote to stderr: $LP_ERR"
head -n 1 <<<"$LP_OUT" | grep -Eq '^PID +COMM +RESULT +RUNTIME +DETAIL$' ||
	fail "no table header: $LP_OUT"
rows=$(tail -n +2 <<<"$LP_OUT")
got=$(awk '{ print $1 }' <<<"$rows" | sort -n | tr '\n' ' ')
[ "$got" = "$ALL" ] || fail "apply --all selected '$got', expected '$ALL'"
for pid in "${PLAIN[@]}"; do
	grep -Eq "^$pid +demo +ok +injected +patch 'all_fix' enabled \(1 function in 1 object\)$" <<<"$rows" ||
		fail "no row for $pid injected and patched: $(grep "^$pid " <<<"$rows")"
done
grep -Eq "^$PRELOADED +demo +ok +present +patch 'all_fix' enabled" <<<"$rows" ||
	fail "no row for the preloaded $PRELOADED: $(grep "^$PRELOADED " <<<"$rows")"
log "apply --all: $(wc -l <<<"$rows") rows"

for pid in "${PLAIN[@]}" "$PRELOADED"; do
	PID=$pid
	expect_reply "call compute 5" 500 "$pid patched by apply --all"
done
PID=$NOPIE
expect_reply "call compute 5" 22 "demo-nopie left alone"
! grep -q liblpatch "/proc/$PID/maps" || fail "the runtime was injected into demo-nopie"

for pid in "${PLAIN[@]}" "$PRELOADED"; do
	PID=$pid
	revert all_fix
done

lp_ok apply --all --json "$PATCHES/all_fix.so"
printf '%s' "$LP_OUT" | jq -e --argjson n $((N + 1)) --argjson pre "$PRELOADED" '
	length == $n and all(.[]; .ok and .error == null and (.injected | not)
		and .message == "patch '"'all_fix'"' enabled (1 function in 1 object)"
		and .comm == "demo" and .runtime_injected == (.pid != $pre))' >/dev/null ||
	fail "apply --all --json: $LP_OUT"
got=$(jq -r '.[].pid' <<<"$LP_OUT" | sort -n | tr '\n' ' ')
[ "$got" = "$ALL" ] || fail "apply --all --json selected '$got', expected '$ALL'"

# Several PIDs, one of them gone.
nopid=$(($(cat /proc/sys/kernel/pid_max) - 1))
while [ -e "/proc/$nopid" ]; do nopid=$((nopid - 1)); done
lp apply "${PLAIN[0]}" "$nopid" "${PLAIN[1]}" "$PATCHES/stack_p1.so"
[ "$LP_RC" -eq 1 ] || fail "apply with a gone PID exited $LP_RC"
[ "$LP_ERR" = "lpatch: apply $PATCHES/stack_p1.so: failed in 1 of 3 processes" ] ||
	fail "stderr: $LP_ERR"
rows=$(tail -n +2 <<<"$LP_OUT")
[ "$(wc -l <<<"$rows")" -eq 3 ] || fail "expected 3 rows: $LP_OUT"
for pid in "${PLAIN[0]}" "${PLAIN[1]}"; do
	grep -Eq "^$pid +demo +ok +present +patch 'stack_p1' enabled" <<<"$rows" ||
		fail "no row for $pid patched: $LP_OUT"
done
grep -Eq "^$nopid +\? +failed +- +no process with PID $nopid$" <<<"$rows" ||
	fail "no failed row for $nopid: $LP_OUT"

# --quiet: nothing when all succeed.
for pid in "${PLAIN[0]}" "${PLAIN[1]}"; do
	PID=$pid
	revert stack_p1
done
lp_ok apply --quiet "${PLAIN[0]}" "${PLAIN[1]}" "$PATCHES/stack_p1.so"
[ -z "$LP_OUT" ] || fail "apply --quiet printed: $LP_OUT"

for pid in "${PLAIN[@]}" "$PRELOADED" "$NOPIE"; do
	PID=$pid
	stop_target
done
