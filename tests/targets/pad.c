/* SPDX-License-Identifier: MIT */
/*
 * pad.c - built with -fpatchable-function-entry=5: pad_func starts with
 * five bytes of nops reserved for a patch jump.
 */
#include "common.h"
#include "demo.h"

static volatile int pad_bias = 2;

PATCHABLE int pad_func(int x)
{
	return x * 17 + pad_bias;
}
