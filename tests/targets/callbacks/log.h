/* SPDX-License-Identifier: MIT */
/*
 * log.h - the callbacks target and its libraries write their steps to the
 * lpatch event log, between the runtime's lines, as the kernel's test
 * modules print theirs to the kernel log (tests/e2e/56-callbacks.sh).
 */
#ifndef LP_TEST_CALLBACKS_LOG_H
#define LP_TEST_CALLBACKS_LOG_H

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>

/*
 * The runtime's lp_printf(), found at run time: these are not patches.
 * Looked up at the first call, which must not come from a thread started
 * by a constructor: dlsym() waits for the loader's lock, which the
 * dlopen() running that constructor holds.
 */
static inline void cb_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void cb_log(const char *fmt, ...)
{
	static void (*lp_printf)(const char *, ...);
	char line[256];
	va_list ap;

	if (!lp_printf)
		lp_printf = (void (*)(const char *, ...))dlsym(RTLD_DEFAULT, "lp_printf");
	if (!lp_printf)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	lp_printf("%s", line);
}

#endif
