/* SPDX-License-Identifier: MIT */
/*
 * libcbmod.so - an ordinary library a callbacks patch names (the kernel's
 * test_klp_callbacks_mod).  It exports one function, as libraries do: the
 * runtime watches one of a library's exported symbols to see it go.
 */
#include "log.h"

int cbmod_version(void);

int cbmod_version(void)
{
	return 1;
}

__attribute__((constructor)) static void cbmod_init(void)
{
	cb_log("cbmod: init");
}

__attribute__((destructor)) static void cbmod_exit(void)
{
	cb_log("cbmod: exit");
}
