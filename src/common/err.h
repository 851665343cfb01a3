/* SPDX-License-Identifier: MIT */
/*
 * The one-line reason every failing function of lpatch writes for its
 * caller: a buffer and its size, either of which may be empty.
 */
#ifndef LP_COMMON_ERR_H
#define LP_COMMON_ERR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* snprintf into @err when there is room for it. */
static inline __attribute__((format(printf, 3, 4))) void lp_set_err(char *err, size_t errlen,
								    const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

#endif
