// SPDX-License-Identifier: MIT
/*
 * Error reporting and the help text.  Scripts and people both read our
 * errors, so each one is a single line on stderr that starts with
 * "lpatch: " and names the cause.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void verror(const char *fmt, va_list ap)
{
	fputs("lpatch: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void lp_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(fmt, ap);
	va_end(ap);
}

int lp_usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(fmt, ap);
	va_end(ap);
	return LP_EXIT_USAGE;
}

/*
 * Text from the runtime goes to a terminal and into logs that are read a
 * line at a time: flatten it to one line whatever it contains.
 */
void lp_one_line(char *s)
{
	size_t n;

	for (char *p = s; *p; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			*p = ' ';
	n = strlen(s);
	while (n && s[n - 1] == ' ')
		s[--n] = '\0';
}

void lp_print_help(FILE *out)
{
	fputs("usage: lpatch COMMAND [ARGS...]\n"
	      "\n"
	      "Live-patch functions of running processes.\n"
	      "\n"
	      "commands:\n"
	      "  run [--] CMD [ARGS...]     run CMD with the lpatch runtime preloaded\n"
	      "  apply [--no-wait] [--timeout SEC] [--verbose] [--quiet] [--json]\n"
	      "        PID... PATCH.so | --all PATCH.so\n"
	      "                             load a patch into each PID (or every process\n"
	      "                             it concerns) and enable it, injecting the\n"
	      "                             runtime where there is none\n"
	      "  revert [--no-wait] [--timeout SEC] [--verbose] [--quiet] PID NAME\n"
	      "                             disable the patch NAME in PID\n"
	      "  force [--quiet] PID        finish PID's transition without checks\n"
	      "  signal [--quiet] PID       signal PID's threads that have not switched\n"
	      "  status [--threads] [--json] PID\n"
	      "                             show PID's patches (and threads)\n"
	      "  list [--json]              list the processes with the runtime\n"
	      "  log PID                    print PID's event log\n"
	      "  --help, -h                 show this help\n"
	      "  --version                  show the version\n"
	      "\n"
	      "exit status: 0 success, 1 the operation failed, 2 usage error.\n"
	      "See docs/cli.md for details.\n",
	      out);
}
