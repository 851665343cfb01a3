#!/bin/bash
# SPDX-License-Identifier: MIT
# test-timeout: 1200
#
# 48-coming-race: patches enabled and disabled while a thread loads and
# unloads their library without a pause (seed 002: a library loading
# while a patch is being enabled must get it once, in order).  The
# "coming" target's loop thread dlopen()s libcoming.so, records what its
# constructor and then coming_value(10) give, and dlclose()s it, over and
# over.  Each cycle applies coming_a, then coming_b, reverts coming_b,
# then coming_a.  Once each change is complete, every load must show
# exactly the patches enabled, the last on top: 21 with none, 1010 with
# coming_a, 2010 with both (a patch missed, applied twice or out of order
# shows another value, or crashes once its code is unloaded).  While a
# change is under way any of the three may show.  Every status taken in
# between must show the library patched by all enabled patches or by none.
. "$(dirname "$0")/lib.sh"

# 2000 enables and disables; a quarter of them under the sanitizers, which
# slow every load down.
if sanitized coming/coming; then
	CYCLES=${LP_COMING_CYCLES:-125}
else
	CYCLES=${LP_COMING_CYCLES:-500}
fi
LIB=$TARGETS/coming/libcoming.so
CP=$PATCHES/coming
require_built "$LIB" "$CP/coming_a.so" "$CP/coming_b.so"

ANY="21 1010 2010"

# settled WANT WHY: the change is done; from now on every load must give WANT.
settled() {
	expect_reply "expect $1" "expect $1" "$2"
}

# change WANT WHY LPATCH-ARGS...: allow any value, run lpatch, then settle.
change() {
	local want=$1 why=$2
	shift 2
	expect_reply "expect $ANY" "expect $ANY"
	lp_ok "$@"
	settled "$want" "$why"
}

# consistent WHY: the libcoming.so objects of the enabled patches are all
# patched or none is, and none reports an error.
consistent() {
	status_json
	jq_true '[.patches[] | .objects[] | select(.name == "libcoming.so")] |
		(all(.[]; .patched) or all(.[]; .patched | not)) and
		all(.[]; .error == null and ((.patched | not) or .loaded))' "$1"
}

start_target coming/coming "$LIB"
expect_reply loop looping
settled 21 "before any patch"

for ((i = 1; i <= CYCLES; i++)); do
	change 1010 "cycle $i: coming_a" apply "$PID" "$CP/coming_a.so"
	change 2010 "cycle $i: coming_a and coming_b" apply "$PID" "$CP/coming_b.so"
	consistent "cycle $i: both enabled"
	change 1010 "cycle $i: coming_b reverted" revert "$PID" coming_b
	change 21 "cycle $i: both reverted" revert "$PID" coming_a
	if ((i % 100 == 0)); then
		log "cycle $i done"
	fi
done

cmd stop
[[ $REPLY =~ ^loads\ ([0-9]+)\ bad\ 0$ ]] || fail "the loop saw wrong values: $REPLY"
log "$CYCLES cycles, ${BASH_REMATCH[1]} loads"
assert_no_patches "after $CYCLES cycles"
stop_target
