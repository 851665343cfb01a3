// SPDX-License-Identifier: MIT
/*
 * Argument parsing shared by the subcommands: option errors, PIDs, seconds
 * and positional-argument counts, each reported as a usage error.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/*
 * Report the option getopt_long() just rejected.  We run getopt with
 * opterr = 0 and a leading ':' so that its own messages, which would name
 * the subcommand as the program, never appear: @c is its return value.
 */
int lp_bad_option(const char *cmd, char **argv, int c)
{
	const char *arg = argv[optind - 1];
	char shortopt[3] = {'-', (char)optopt, '\0'};
	int len = (int)strcspn(arg, "=");

	/* A long option is named by its argument, a short one by optopt. */
	if (strncmp(arg, "--", 2)) {
		arg = shortopt;
		len = 2;
	}
	if (c == ':')
		return lp_usage_error("%s: option '%.*s' needs a value (see 'lpatch --help')", cmd,
				      len, arg);
	return lp_usage_error("%s: unknown option '%.*s' (see 'lpatch --help')", cmd, len, arg);
}

/* A PID is a decimal number > 0; anything else is a usage error. */
int lp_parse_pid(const char *text, pid_t *pid)
{
	char *end;
	long v;

	/* strtol() alone would take " 12", "+12" and "-12". */
	if (!isdigit((unsigned char)text[0]))
		return lp_usage_error("invalid PID '%s'", text);
	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || *end || v <= 0 || v > INT_MAX)
		return lp_usage_error("invalid PID '%s'", text);
	*pid = (pid_t)v;
	return LP_EXIT_OK;
}

/* A number of seconds: a decimal number >= 0 that fits a poll() timeout. */
int lp_parse_seconds(const char *text, int *seconds)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (!isdigit((unsigned char)text[0]) || errno || *end || v > INT_MAX / 1000)
		return lp_usage_error("invalid timeout '%s' (want whole seconds, 0 for none)",
				      text);
	*seconds = (int)v;
	return LP_EXIT_OK;
}

/* Check the number of positional arguments; @names is the usage, "PID NAME". */
int lp_expect_args(const char *cmd, int have, int want, const char *names)
{
	if (have < want)
		return lp_usage_error("%s: missing arguments (usage: lpatch %s %s)", cmd, cmd,
				      names);
	if (have > want)
		return lp_usage_error("%s: too many arguments (usage: lpatch %s %s)", cmd, cmd,
				      names);
	return LP_EXIT_OK;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

void lp_sort_pids(pid_t *pids, size_t n)
{
	if (n)
		qsort(pids, n, sizeof(*pids), cmp_pid);
}
