/* SPDX-License-Identifier: MIT */
/*
 * libcoming.so - a library the "coming" target loads and unloads while
 * patches for it are installed (tests/e2e/46-49).  Its constructor calls
 * the patched coming_value(), so a test sees whether the library was
 * patched before any of its code ran.
 */
#include "../common.h"

int coming_value(int x);
int coming_short(int x);

/* What coming_value(10) gave the constructor. */
int coming_ctor_result = -1;

static volatile int bias = 1;

PATCHABLE int coming_value(int x)
{
	return 2 * x + bias;
}

__attribute__((constructor)) static void coming_init(void)
{
	coming_ctor_result = coming_value(10);
}
