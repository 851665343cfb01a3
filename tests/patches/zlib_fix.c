/* SPDX-License-Identifier: MIT */
/*
 * zlib_fix.c - libz.so.1: zlibVersion() returns "lpatch-zlib".  Debian's
 * zlibVersion starts with a RIP-relative lea, which the displaced prologue
 * must relocate.
 */
#include <lpatch.h>

static const char *new_zlibVersion(void)
{
	return "lpatch-zlib";
}

static struct lp_func funcs[] = {
	{ .old_name = "zlibVersion", .new_func = new_zlibVersion },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = "libz.so.1", .funcs = funcs },
	{ 0 }
};

LP_PATCH(.objs = objs);
