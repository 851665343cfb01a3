/* SPDX-License-Identifier: MIT */
/* common.c - the line protocol shared by the test targets (see common.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

void target_ready(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	reply("ready");
}

int next_command(char *buf, int size, char **arg)
{
	char *sp;

	if (!fgets(buf, size, stdin))
		return 0;
	buf[strcspn(buf, "\n")] = '\0';
	sp = strchr(buf, ' ');
	if (sp) {
		*sp = '\0';
		*arg = sp + 1;
	} else {
		*arg = buf + strlen(buf);
	}
	return 1;
}

void reply(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

int int_arg(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || end == s || *end != '\0') {
		fprintf(stderr, "target: bad number '%s'\n", s);
		exit(2);
	}
	return (int)v;
}
