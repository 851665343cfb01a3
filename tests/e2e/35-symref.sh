#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 35-symref: a patch calls a static function of the target through a symbol
# reference (lp_object.syms): use_secret(5) = secret_scale(5) + 2000, where
# the target's own secret_scale(5) = 26.
. "$(dirname "$0")/lib.sh"

start_target demo
expect_reply "call use_secret 5" 27 "before"
apply symref
assert_patches symref
expect_reply "call use_secret 5" 2026 "patched: calls the static secret_scale"
expect_reply "call use_secret 3" 2010 "patched: calls the static secret_scale"
revert symref
assert_no_patches
expect_reply "call use_secret 5" 27 "reverted"
same_bytes "$TARGETS/demo" use_secret
stop_target
