// SPDX-License-Identifier: MIT
/*
 * lpatch run: exec a command with the runtime preloaded, so that the
 * process has an agent from its first instruction on and never needs to be
 * injected.
 */
#include <errno.h>
#include <link.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* As env(1) and the shells do: the command could not be run. */
#define EXIT_CANNOT_RUN 127

static const struct option run_opts[] = {
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/*
 * Running from the build tree (build/src/cli/lpatch) must use the runtime
 * built next to it (build/src/runtime/liblpatch.so), not an older installed
 * one; @buf receives that path if it exists.
 */
static bool build_tree_runtime(char *buf, size_t size)
{
	char exe[PATH_MAX], candidate[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n < 0 || (size_t)n >= sizeof(exe) - 1)
		return false;
	exe[n] = '\0';
	snprintf(candidate, sizeof(candidate), "%s/../runtime/liblpatch.so", dirname(exe));
	/* realpath() both checks existence and drops the "..". */
	return size >= PATH_MAX && realpath(candidate, buf) != NULL;
}

const char *lp_runtime_path(char *buf, size_t size)
{
	const char *env = getenv("LPATCH_RUNTIME");

	if (env && *env)
		return env;
	if (build_tree_runtime(buf, size))
		return buf;
	return LP_LIBDIR "/liblpatch.so";
}

/*
 * The dynamic loader only warns about a preload it cannot find and runs the
 * program anyway; a process that silently lacks its runtime is worse than
 * one that does not start.
 */
static bool check_runtime(const char *cmd, const char *runtime)
{
	if (strpbrk(runtime, ": \t")) {
		lp_error("cannot run %s: the runtime path '%s' cannot be preloaded "
			 "(it contains a separator)",
			 cmd, runtime);
		return false;
	}
	if (access(runtime, R_OK) < 0) {
		lp_error("cannot run %s: runtime %s: %s", cmd, runtime, strerror(errno));
		return false;
	}
	return true;
}

#ifdef __SANITIZE_ADDRESS__
static int find_asan(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	if (!strstr(info->dlpi_name, "/libasan.so"))
		return 0;
	*(const char **)arg = info->dlpi_name;
	return 1;
}

/*
 * A sanitizer build's runtime needs the sanitizer's own runtime loaded
 * before it, which this command, built the same way, has loaded too.
 */
static const char *sanitizer_runtime(void)
{
	const char *path = NULL;

	dl_iterate_phdr(find_asan, &path);
	return path;
}
#else
static const char *sanitizer_runtime(void)
{
	return NULL;
}
#endif

/* LD_PRELOAD = runtime first, then whatever the user preloads already. */
static bool set_preload(const char *runtime)
{
	const char *old = getenv("LD_PRELOAD"), *asan = sanitizer_runtime();
	char *value;
	int ret;

	/* cppcheck-suppress knownConditionTrueFalse ; true in a sanitizer build */
	if (asan) {
		if (asprintf(&value, "%s:%s%s%s", asan, runtime, old && *old ? ":" : "",
			     old ? old : "") < 0)
			return false;
		ret = setenv("LD_PRELOAD", value, 1);
		free(value);
	} else if (old && *old) {
		if (asprintf(&value, "%s:%s", runtime, old) < 0)
			return false;
		ret = setenv("LD_PRELOAD", value, 1);
		free(value);
	} else {
		ret = setenv("LD_PRELOAD", runtime, 1);
	}
	return ret == 0;
}

int lp_cmd_run(int argc, char **argv)
{
	char buf[PATH_MAX];
	const char *runtime;
	char **cmd;
	int c;

	/* "+": options stop at the command, whose own options are its own. */
	while ((c = getopt_long(argc, argv, "+:h", run_opts, NULL)) != -1) {
		if (c != 'h')
			return lp_bad_option(argv[0], argv, c);
		lp_print_help(stdout);
		return LP_EXIT_OK;
	}
	if (optind >= argc)
		return lp_usage_error(
		    "run: missing command (usage: lpatch run [--] CMD [ARGS...])");
	cmd = argv + optind;
	runtime = lp_runtime_path(buf, sizeof(buf));
	if (!check_runtime(cmd[0], runtime))
		return EXIT_CANNOT_RUN;
	if (!set_preload(runtime)) {
		lp_error("cannot run %s: %s", cmd[0], strerror(errno));
		return EXIT_CANNOT_RUN;
	}
	fflush(NULL);
	execvp(cmd[0], cmd);
	lp_error("cannot run %s: %s", cmd[0], strerror(errno));
	return EXIT_CANNOT_RUN;
}
