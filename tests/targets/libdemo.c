/* SPDX-License-Identifier: MIT */
/* libdemo.c - a shared library function patched by patches/lib_fix.c. */
#include "common.h"
#include "libdemo.h"

static volatile int lib_bias = 3;

PATCHABLE int demo_lib_value(int x)
{
	return x * 11 + lib_bias;
}
