#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 59-examples: the sample patches of examples/ do what docs/writing-patches.md
# says, on their sample programs, which print one line per tick:
#   - callbacks/fix_table fixes price() and, in post_patch, the table the
#     program computed with the old price(); post_unpatch rebuilds it again;
#   - states/limit_v1 raises max_clients (system state 1); the cumulative
#     limit_v2 replaces it, takes the raised setting over without raising it
#     twice, and fixes greeting(); reverting limit_v2 restores both.
#   - `make demo`'s script (examples/demo/run-demo) ends well: the shop's
#     prices are fixed after the apply and buggy again after the revert.
# (examples/shadow has 78-shadow.sh.)
. "$(dirname "$0")/lib.sh"

EX=$BUILD/examples
require_built "$EX/table" "$EX/fix_table.so" "$EX/limits" "$EX/limit_v1.so" "$EX/limit_v2.so"

# run_example PROGRAM: start it under `lpatch run`, its output on a fifo.
run_example() {
	mkfifo "$TMP/$1.out"
	"$LPATCH" run -- "$EX/$1" >"$TMP/$1.out" 2>"$TMP/$1.err" &
	PID=$!
	LP_PIDS+=("$PID")
	exec {OUT}<"$TMP/$1.out"
}

# until_line PATTERN: read the program's lines until one matches PATTERN
# (an extended regular expression); it prints one every 300 ms.
until_line() {
	local line i
	for ((i = 0; i < 100; i++)); do
		IFS= read -r -t "$LP_REPLY_TIMEOUT" line <&"$OUT" || fail "no output (waiting for '$1')"
		[[ $line =~ $1 ]] && return 0
	done
	fail "no line matched '$1' (last: '$line')"
}

# --- callbacks --------------------------------------------------------------------
run_example table
until_line ' 1 items = 0\.90$' # the bug: a discount for one item
lp_ok apply "$PID" "$EX/fix_table.so"
until_line ' 1 items = 1\.00$'
until_line '12 items = 10\.80$'
lp_ok revert "$PID" fix_table
until_line ' 1 items = 0\.90$'
lp_ok log "$PID"
[ "$(grep '^fix_table:' <<<"$LP_OUT")" = "fix_table: price table rebuilt with the fixed price()
fix_table: price table rebuilt with the original price()" ] ||
	fail "fix_table's callbacks did not run once each: $LP_OUT"
kill "$PID"

# --- states -------------------------------------------------------------------------
run_example limits
until_line 'Wellcome, up to 100 clients$'
lp_ok apply "$PID" "$EX/limit_v1.so"
until_line 'Wellcome, up to 400 clients$'
lp_ok apply "$PID" "$EX/limit_v2.so"
until_line ': Welcome, up to 400 clients$'
status_json
jq_true '[.patches[].name] == ["limit_v2"]' "limit_v2 replaced limit_v1"
lp_ok revert "$PID" limit_v2
until_line 'Wellcome, up to 100 clients$'
lp_ok log "$PID"
[ "$(grep '^limit_v' <<<"$LP_OUT")" = "limit_v1: max_clients raised to 400
limit_v2: taking over max_clients from the installed patch
limit_v2: max_clients back to 100" ] || fail "unexpected callbacks of the limit patches: $LP_OUT"
kill "$PID"

# --- make demo ------------------------------------------------------------
require_built "$EX/shop" "$EX/fix.so"
demo=$(timeout 120 "$LP_REPO/examples/demo/run-demo" "$BUILD" 2>&1) ||
	fail "examples/demo/run-demo failed: $demo"
# The order lines of step N (2: patched, 4: reverted).
step_orders() {
	awk -v n="$1" '/^[0-9]\. / { step = $1 + 0 } step == n && /order/' <<<"$demo"
}
grep -qxF "patch 'fix' enabled (1 function in 1 object)" <<<"$demo" ||
	fail "the demo's apply did not enable the fix: $demo"
patched=$(step_orders 2) reverted=$(step_orders 4)
[ "$(grep -cE "( 1 items at 1.00 = 1.00| 3 items at 1.00 = 3.00| 12 items at 1.00 = 10.80)$" <<<"$patched")" -eq 3 ] ||
	fail "the demo's prices are not fixed after the apply: $patched"
[ "$(grep -cE "( 1 items at 1.00 = 0.90| 3 items at 1.00 = 2.70| 12 items at 1.00 = 10.80)$" <<<"$reverted")" -eq 3 ] ||
	fail "the demo's prices are not the original after the revert: $reverted"
log "make demo: fixed, then reverted"
