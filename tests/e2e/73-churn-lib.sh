#!/bin/bash
# SPDX-License-Identifier: MIT
# test-timeout: 900
#
# 73-churn-lib: 72-parked.sh with stress/churn_lib_fix, which also patches
# libdemo.so while the churn target's "dlopen" thread loads and unloads it
# without a pause: every load is patched as it comes (before its code
# runs) and unpatched as it goes, in the middle of the transitions.
LP_CHURN_LIB=1 exec "$(dirname "$0")/72-parked.sh"
