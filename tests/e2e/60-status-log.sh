#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 60-status-log: the exact event log of an apply and a revert, every field
# of `status --json`, and `list --json` naming the process and its patch.
. "$(dirname "$0")/lib.sh"

start_target demo
assert_no_patches "fresh process"
jq_true ".pid == $PID and .version == \"0.1.0\"" "pid and version"

lp_ok apply "$PID" "$PATCHES/fix.so"
[ "$LP_OUT" = "patch 'fix' enabled (1 function in 1 object)" ] ||
	fail "apply printed: '$LP_OUT'"

# status --json, field by field.
fix_path=$(realpath "$PATCHES/fix.so")
exe=$(realpath "$TARGETS/demo")
build_id=$(readelf -n "$exe" | awk '/Build ID:/ { print $3; exit }')
[ -n "$build_id" ] || fail "$exe has no build-id note"
status_json
jq_true ".pid == $PID and .version == \"0.1.0\" and .transition == null" "top level"
jq_true '.patches | length == 1' "one patch"
jq_true ".patches[0] | .name == \"fix\" and .path == \"$fix_path\"
	and .enabled == true and .transition == false and .forced == false
	and .replace == false and .stack_order == 1" "patch fields"
jq_true '.patches[0].objects | length == 1' "one object"
jq_true ".patches[0].objects[0] | .name == null and .path == \"$exe\"
	and .build_id == \"$build_id\" and .loaded == true and .patched == true" \
	"object fields"
jq_true '.patches[0].objects[0].functions | length == 1' "one function"
jq_true '.patches[0].objects[0].functions[0] | .name == "compute" and .sympos == 0
	and .patched == true and .transition == false
	and (.new_addr | test("^0x[0-9a-f]+$"))' "function fields"
check_old_addr '.patches[0].objects[0].functions[0].old_addr' "$exe" compute

# The human-readable forms work too.
lp_ok status "$PID"
grep -q fix <<<"$LP_OUT" || fail "status does not mention fix: $LP_OUT"
lp_ok status --threads "$PID"
grep -q "$PID" <<<"$LP_OUT" || fail "status --threads does not list thread $PID: $LP_OUT"

# list_ok ARGS...: `lpatch list` must succeed.  It may warn on stderr about
# other processes of the machine (other tests' targets coming and going).
list_ok() {
	lp list "$@"
	[ "$LP_RC" -eq 0 ] || fail "lpatch list $* exited $LP_RC: $LP_ERR"
}

# list --json: some object in it carries our pid and names the patch.
list_ok --json
printf '%s' "$LP_OUT" | jq -e --argjson pid "$PID" '
	[.. | objects | select(.pid? == $pid)] | length >= 1 and
	(.[0] | [.. | strings] | index("fix") != null)' >/dev/null ||
	fail "list --json does not show $PID with patch fix: $LP_OUT"
list_ok
grep -qw "$PID" <<<"$LP_OUT" || fail "list does not show $PID: $LP_OUT"

revert fix
assert_no_patches "after revert"
list_ok --json
printf '%s' "$LP_OUT" | jq -e --argjson pid "$PID" '
	[.. | objects | select(.pid? == $pid)] | length >= 1 and
	(.[0] | [.. | strings] | index("fix") == null)' >/dev/null ||
	fail "list --json still shows patch fix in $PID: $LP_OUT"

log_is "$(apply_revert_transcript fix)"
stop_target
