/* SPDX-License-Identifier: MIT */
/* cet.c - built with -fcf-protection=full: cet_func starts with endbr64. */
#include "common.h"
#include "demo.h"

static volatile int cet_bias = 1;

PATCHABLE int cet_func(int x)
{
	return x * 13 + cet_bias;
}
