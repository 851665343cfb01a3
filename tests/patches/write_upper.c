/* SPDX-License-Identifier: MIT */
/*
 * libc's write(): what goes to standard output is upper-cased.  For an
 * unmodified program of the distribution, cat (tests/e2e/83-inject-debian.sh),
 * whose every line goes through write().  The original is not called: the
 * system call is made directly.
 */
#include <ctype.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <lpatch.h>

static ssize_t upper_write(int fd, const void *buf, size_t len)
{
	char copy[4096];
	const char *p = buf;

	if (fd != STDOUT_FILENO || len > sizeof(copy))
		return syscall(SYS_write, fd, buf, len);
	for (size_t i = 0; i < len; i++)
		copy[i] = (char)toupper((unsigned char)p[i]);
	return syscall(SYS_write, fd, copy, len);
}

static struct lp_func funcs[] = {
	{ .old_name = "write", .new_func = upper_write },
	{ 0 },
};

static struct lp_object objs[] = {
	{ .name = "libc.so.6", .funcs = funcs },
	{ 0 },
};

LP_PATCH(.objs = objs);
