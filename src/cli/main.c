// SPDX-License-Identifier: MIT
/*
 * lpatch: the command-line client of the lpatch runtime.  main() only
 * picks the subcommand; each one lives in its own file.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
};

static const struct command commands[] = {
    {"run", lp_cmd_run},     {"apply", lp_cmd_apply},	{"revert", lp_cmd_revert},
    {"force", lp_cmd_force}, {"signal", lp_cmd_signal}, {"status", lp_cmd_status},
    {"list", lp_cmd_list},   {"log", lp_cmd_log},
};

static int dispatch(int argc, char **argv)
{
	const char *name = argv[1];

	if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
		lp_print_help(stdout);
		return LP_EXIT_OK;
	}
	if (!strcmp(name, "--version")) {
		printf("lpatch %s\n", LP_VERSION);
		return LP_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(name, commands[i].name))
			continue;
		/* The subcommand parses its own arguments, with argv[0] its name. */
		opterr = 0;
		optind = 1;
		return commands[i].fn(argc - 1, argv + 1);
	}
	if (name[0] == '-')
		return lp_usage_error("unknown option '%s' (see 'lpatch --help')", name);
	return lp_usage_error("unknown command '%s' (see 'lpatch --help')", name);
}

int main(int argc, char **argv)
{
	int ret;

	if (argc < 2)
		return lp_usage_error("missing command (see 'lpatch --help')");
	ret = dispatch(argc, argv);
	/* A full disk or closed pipe must not pass for success. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		lp_error("cannot write the output: %s", strerror(errno));
		return LP_EXIT_FAIL;
	}
	return ret;
}
