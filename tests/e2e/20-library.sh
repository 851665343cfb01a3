#!/bin/bash
# SPDX-License-Identifier: MIT
#
# 20-library: patch a function of a shared library the program links
# (libdemo.so, built with the targets; object name "libdemo.so").
. "$(dirname "$0")/lib.sh"

start_target demo
expect_reply "call demo_lib_value 5" 58 "before"

apply lib_fix
assert_patches lib_fix
status_json
jq_true '.patches[0].objects[0] | .name == "libdemo.so" and .loaded and .patched' \
	"object libdemo.so loaded and patched"
libpath=$(mapped_path libdemo.so)
[ -n "$libpath" ] || fail "libdemo.so is not mapped in $PID"
check_old_addr '.patches[0].objects[0].functions[0].old_addr' "$libpath" demo_lib_value
expect_reply "call demo_lib_value 5" 3005 "patched"
# The main program's functions are untouched.
expect_reply "call compute 5" 22

revert lib_fix
assert_no_patches
expect_reply "call demo_lib_value 5" 58 "reverted"
same_bytes "$libpath" demo_lib_value
stop_target
