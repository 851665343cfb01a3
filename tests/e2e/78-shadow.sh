#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 78-shadow: shadow variables.
#
# 1. The counterpart of the kernel selftest test-shadow-vars: the pre_patch
#    callback of patches/shadow_vars.c runs get, alloc, get_or_alloc, free
#    and free_all in a fixed order and logs each step; the event log must be
#    this exact transcript.
# 2. The example of examples/shadow: accounts' sessions have no count of
#    failed logins; lockout.so adds one as a shadow variable, allocated
#    where a session opens (or at the first login of one opened before the
#    patch), used at login, freed where it closes and, for the sessions
#    still open, in post_unpatch.  Behaviour and log before, while patched,
#    and after the revert.
. "$(dirname "$0")/lib.sh"

EXAMPLES=$BUILD/examples
require_built "$PATCHES/shadow_vars.so" "$EXAMPLES/accounts" "$EXAMPLES/lockout.so"

# shadow_log_is EXPECTED: the event log of $PID, with the object address of
# the runtime's shadow-variable lines (it changes from run to run) made
# ADDR, must be exactly EXPECTED.
shadow_log_is() {
	local got
	lp_ok log "$PID"
	got=$(sed -E 's/^(lpatch: .*shadow variable <)0x[0-9a-f]+,/\1ADDR,/' <<<"$LP_OUT")
	[ "$got" = "$1" ] || fail "unexpected event log:
--- expected:
$1
--- got:
$got"
}

# --- 1. test-shadow-vars ----------------------------------------------------
P=shadow_vars
start_target demo
apply shadow_vars
assert_patches shadow_vars
sequence=$(
	cat <<EOF
lpatch: enabling patch '$P'
lpatch: '$P': initializing patching transition
$P: lp_shadow_get(obj=PTR1, id=0x1234) = PTR0
$P:   got expected NULL result
$P: ctor(obj=PTR1, shadow_data=PTR2, ctor_data=PTR3)
$P: lp_shadow_alloc(obj=PTR1, id=0x1234, size=4, ctor=PTR4, ctor_data=PTR3) = PTR2
$P: ctor(obj=PTR5, shadow_data=PTR6, ctor_data=PTR7)
$P: lp_shadow_alloc(obj=PTR5, id=0x1234, size=4, ctor=PTR4, ctor_data=PTR7) = PTR6
$P: ctor(obj=PTR1, shadow_data=PTR8, ctor_data=PTR9)
$P: lp_shadow_alloc(obj=PTR1, id=0x1235, size=4, ctor=PTR4, ctor_data=PTR9) = PTR8
$P: lp_shadow_get(obj=PTR1, id=0x1234) = PTR2
$P:   got expected PTR2 -> 1 result
$P: lp_shadow_get(obj=PTR5, id=0x1234) = PTR6
$P:   got expected PTR6 -> 2 result
$P: lp_shadow_get(obj=PTR1, id=0x1235) = PTR8
$P:   got expected PTR8 -> 3 result
$P: lp_shadow_get(obj=PTR5, id=0x1235) = PTR0
$P:   got expected NULL result
lpatch: duplicate shadow variable <ADDR, 0x1234>
$P: lp_shadow_alloc(obj=PTR1, id=0x1234, size=4, ctor=PTR4, ctor_data=PTR10) = PTR0
$P:   got expected NULL result
$P: lp_shadow_get(obj=PTR1, id=0x1234) = PTR2
$P:   got expected PTR2 -> 1 result
$P: ctor(obj=PTR11, shadow_data=PTR12, ctor_data=PTR10)
$P: lp_shadow_get_or_alloc(obj=PTR11, id=0x1234, size=4, ctor=PTR4, ctor_data=PTR10) = PTR12
$P: lp_shadow_get_or_alloc(obj=PTR11, id=0x1234, size=4, ctor=PTR4, ctor_data=PTR13) = PTR12
$P:   got expected PTR12 -> 4 result
$P: ctor(obj=PTR5, shadow_data=PTR14, ctor_data=PTR13)
$P: lp_shadow_get_or_alloc(obj=PTR5, id=0x1235, size=4, ctor=PTR4, ctor_data=PTR13) = PTR14
$P: lp_shadow_get(obj=PTR5, id=0x1235) = PTR14
$P:   got expected PTR14 -> 5 result
$P: ctor_fails(obj=PTR11, ctor_data=PTR15)
lpatch: failed to construct shadow variable <ADDR, 0x1235> (-12)
$P: lp_shadow_alloc(obj=PTR11, id=0x1235, size=4, ctor=PTR16, ctor_data=PTR15) = PTR0
$P:   got expected NULL result
$P: lp_shadow_get(obj=PTR11, id=0x1235) = PTR0
$P:   got expected NULL result
$P: lp_shadow_alloc(obj=PTR11, id=0x1236, size=4, ctor=PTR0, ctor_data=PTR0) = PTR17
$P: lp_shadow_get(obj=PTR11, id=0x1236) = PTR17
$P:   got expected PTR17 -> 0 result
$P: dtor(obj=PTR1, shadow_data=PTR2)
$P: lp_shadow_free(obj=PTR1, id=0x1234, dtor=PTR18)
$P: lp_shadow_get(obj=PTR1, id=0x1234) = PTR0
$P:   got expected NULL result
$P: dtor(obj=PTR5, shadow_data=PTR6)
$P: lp_shadow_free(obj=PTR5, id=0x1234, dtor=PTR18)
$P: lp_shadow_get(obj=PTR5, id=0x1234) = PTR0
$P:   got expected NULL result
$P: dtor(obj=PTR11, shadow_data=PTR12)
$P: lp_shadow_free(obj=PTR11, id=0x1234, dtor=PTR18)
$P: lp_shadow_get(obj=PTR11, id=0x1234) = PTR0
$P:   got expected NULL result
$P: lp_shadow_free(obj=PTR11, id=0x1234, dtor=PTR18)
$P: lp_shadow_get(obj=PTR1, id=0x1235) = PTR8
$P:   got expected PTR8 -> 3 result
$P: lp_shadow_free_all(id=0x1235, dtor=PTR18)
$P:   dtor ran for shadow_data=PTR8
$P:   dtor ran for shadow_data=PTR14
$P: lp_shadow_get(obj=PTR1, id=0x1235) = PTR0
$P:   got expected NULL result
$P: lp_shadow_get(obj=PTR5, id=0x1235) = PTR0
$P:   got expected NULL result
$P: lp_shadow_get(obj=PTR11, id=0x1236) = PTR17
$P:   got expected PTR17 -> 0 result
$P: lp_shadow_free_all(id=0x1236, dtor=PTR18)
$P:   dtor ran for shadow_data=PTR17
$P: lp_shadow_get(obj=PTR11, id=0x1236) = PTR0
$P:   got expected NULL result
$P: all checks passed
lpatch: '$P': starting patching transition
lpatch: '$P': completing patching transition
lpatch: '$P': patching complete
EOF
)
shadow_log_is "$sequence"
revert shadow_vars
assert_no_patches "shadow_vars reverted"
shadow_log_is "$sequence
$(disable_transcript "$P")"
stop_target

# --- 2. examples/shadow: accounts and lockout ------------------------------
TARGETS=$EXAMPLES start_target accounts
expect_reply "open alice" "session 1"
for i in 1 2 3 4; do
	expect_reply "login 1 guess$i" "wrong password" "unpatched: guess $i"
done
expect_reply "login 1 wonderland" "welcome alice" \
	"unpatched: no lock after four wrong passwords"

lp_ok apply "$PID" "$EXAMPLES/lockout.so"
assert_patches lockout

# A session opened under the patch gets its count at once.
expect_reply "open bob" "session 2"
for i in 1 2 3; do
	expect_reply "login 2 guess$i" "wrong password" "patched: guess $i"
done
expect_reply "login 2 builder" locked "patched: locked after three wrong passwords"
expect_reply "login 2 guess4" locked "patched: still locked"

# Session 1, opened before the patch, gets its count at its first login;
# its four earlier failures were never counted.
expect_reply "login 1 wonderland" "welcome alice" "patched: session 1's first login"
for i in 1 2 3; do
	expect_reply "login 1 guess$i" "wrong password" "patched: session 1, guess $i"
done
expect_reply "login 1 wonderland" locked "patched: session 1 locked"

# A right password clears the count.
expect_reply "open alice" "session 3"
expect_reply "login 3 guess1" "wrong password"
expect_reply "login 3 guess2" "wrong password"
expect_reply "login 3 wonderland" "welcome alice" "patched: two failures do not lock"
expect_reply "login 3 guess3" "wrong password"
expect_reply "login 3 guess4" "wrong password"
expect_reply "login 3 wonderland" "welcome alice" "patched: the count restarted"

# Closing a session frees its count (the destructor logs it).
expect_reply "close 2" "closed 2"
expect_reply "close 3" "closed 3"
patched_log=$(
	cat <<EOF
$(enable_transcript lockout)
lockout: session 2: counting failed logins
lockout: session 2: locked after 3 failed logins
lockout: session 1: counting failed logins
lockout: session 1: locked after 3 failed logins
lockout: session 3: counting failed logins
lockout: session 2: count freed
lockout: session 3: count freed
EOF
)
shadow_log_is "$patched_log"

# The revert: post_unpatch frees the count of session 1, still open.
revert lockout
assert_no_patches "lockout reverted"
reverted_log="$patched_log
lpatch: 'lockout': initializing unpatching transition
lpatch: 'lockout': starting unpatching transition
lpatch: 'lockout': completing unpatching transition
lockout: session 1: count freed
lpatch: 'lockout': unpatching complete"
shadow_log_is "$reverted_log"

# The original code again: no lock, no count.
expect_reply "login 1 wonderland" "welcome alice" "reverted: session 1 is not locked"
for i in 1 2 3 4; do
	expect_reply "login 1 guess$i" "wrong password" "reverted: guess $i"
done
expect_reply "login 1 wonderland" "welcome alice" "reverted: no lock again"
expect_reply "open bob" "session 4"
expect_reply "close 4" "closed 4"
expect_reply "close 1" "closed 1"
shadow_log_is "$reverted_log"
same_bytes "$EXAMPLES/accounts" session_login
stop_target
