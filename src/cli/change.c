// SPDX-License-Identifier: MIT
/*
 * The commands that change a process's patches: apply, revert and force.
 * Each may start or end a transition, so each relays the runtime's
 * progress and, for apply and revert, bounds the wait with --timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

enum { OPT_NO_WAIT = 0x100, OPT_TIMEOUT };

/* Options common to the three commands; each accepts the ones it lists. */
struct change_opts {
	bool no_wait;
	bool quiet;
	bool verbose;
	int timeout;
};

static const struct option apply_opts[] = {
    {"no-wait", no_argument, NULL, OPT_NO_WAIT},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const struct option revert_opts[] = {
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const struct option force_opts[] = {
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/*
 * Parse the options of @argv against @opts (@shortopts names the short
 * ones); returns -1 to go on, else the exit code (--help, usage error).
 */
static int parse_opts(int argc, char **argv, const struct option *opts, const char *shortopts,
		      struct change_opts *o)
{
	int c;

	o->timeout = LP_DEFAULT_TIMEOUT;
	while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		switch (c) {
		case OPT_NO_WAIT:
			o->no_wait = true;
			break;
		case OPT_TIMEOUT:
			if (lp_parse_seconds(optarg, &o->timeout) != LP_EXIT_OK)
				return LP_EXIT_USAGE;
			break;
		case 'v':
			/* The last of --verbose and --quiet wins, as in most tools. */
			o->verbose = true;
			o->quiet = false;
			break;
		case 'q':
			o->quiet = true;
			o->verbose = false;
			break;
		case 'h':
			lp_print_help(stdout);
			return LP_EXIT_OK;
		default:
			return lp_bad_option(argv[0], argv, c);
		}
	}
	return -1;
}

/*
 * Progress is for a person watching: shown when stderr is a terminal, or
 * asked for with --verbose.  Scripts get a clean stderr that holds nothing
 * but an error, and --quiet silences it on a terminal too.
 */
static unsigned int request_flags(const struct change_opts *o)
{
	if (o->verbose)
		return LP_REQ_PROGRESS | LP_REQ_VERBOSE;
	if (!o->quiet && isatty(STDERR_FILENO))
		return LP_REQ_PROGRESS;
	return 0;
}

/* Send @req and print the runtime's success message unless --quiet. */
static int run_request(const struct lp_request *req, const struct change_opts *o)
{
	char *answer;
	size_t len;

	if (lp_request(req, &answer) != LP_REQ_OK)
		return LP_EXIT_FAIL;
	len = strlen(answer);
	if (!o->quiet && len) {
		fputs(answer, stdout);
		if (answer[len - 1] != '\n')
			putchar('\n');
	}
	free(answer);
	return LP_EXIT_OK;
}

/*
 * Open the patch here rather than letting the runtime open a path: the
 * runtime checks the very file we opened (with our permissions, not the
 * target's), and a path in our mount namespace need not exist in its.
 */
static int open_patch(const char *arg, char *path, size_t size)
{
	char link[64];
	struct stat st;
	ssize_t n;
	int fd = open(arg, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		lp_error("cannot open %s: %s", arg, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		lp_error("cannot open %s: %s", arg, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		lp_error("cannot open %s: %s", arg,
			 S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file");
		close(fd);
		return -1;
	}
	/* The absolute path of what we opened, even if @arg was renamed since. */
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, size - 1);
	if (n < 0 || (size_t)n >= size - 1) {
		lp_error("cannot resolve the path of %s: %s", arg,
			 n < 0 ? strerror(errno) : strerror(ENAMETOOLONG));
		close(fd);
		return -1;
	}
	path[n] = '\0';
	return fd;
}

int lp_cmd_apply(int argc, char **argv)
{
	char path[PATH_MAX], what[PATH_MAX + 64];
	struct change_opts o = {0};
	struct lp_request req = {.fd = -1, .what = what, .waiting_for = "the transition"};
	int ret = parse_opts(argc, argv, apply_opts, ":hvq", &o);

	if (ret >= 0)
		return ret;
	ret = lp_expect_args(argv[0], argc - optind, 2, "[OPTIONS] PID PATCH.so");
	if (ret == LP_EXIT_OK)
		ret = lp_parse_pid(argv[optind], &req.pid);
	if (ret != LP_EXIT_OK)
		return ret;
	req.fd = open_patch(argv[optind + 1], path, sizeof(path));
	if (req.fd < 0)
		return LP_EXIT_FAIL;
	snprintf(what, sizeof(what), "apply %s to %d", argv[optind + 1], (int)req.pid);
	req.timeout = o.timeout;
	req.flags = request_flags(&o);
	lp_request_add(&req, "apply");
	lp_request_add(&req, path);
	if (o.no_wait)
		lp_request_add(&req, "nowait");
	ret = run_request(&req, &o);
	close(req.fd);
	return ret;
}

int lp_cmd_revert(int argc, char **argv)
{
	char what[512];
	struct change_opts o = {0};
	struct lp_request req = {.fd = -1, .what = what, .waiting_for = "the transition"};
	int ret = parse_opts(argc, argv, revert_opts, ":hq", &o);

	if (ret >= 0)
		return ret;
	ret = lp_expect_args(argv[0], argc - optind, 2, "[OPTIONS] PID NAME");
	if (ret == LP_EXIT_OK)
		ret = lp_parse_pid(argv[optind], &req.pid);
	if (ret != LP_EXIT_OK)
		return ret;
	snprintf(what, sizeof(what), "revert %s in %d", argv[optind + 1], (int)req.pid);
	req.timeout = o.timeout;
	req.flags = request_flags(&o);
	lp_request_add(&req, "revert");
	lp_request_add(&req, argv[optind + 1]);
	return run_request(&req, &o);
}

int lp_cmd_force(int argc, char **argv)
{
	char what[64];
	struct change_opts o = {0};
	struct lp_request req = {.fd = -1, .what = what};
	int ret = parse_opts(argc, argv, force_opts, ":hq", &o);

	if (ret >= 0)
		return ret;
	ret = lp_expect_args(argv[0], argc - optind, 1, "[--quiet] PID");
	if (ret == LP_EXIT_OK)
		ret = lp_parse_pid(argv[optind], &req.pid);
	if (ret != LP_EXIT_OK)
		return ret;
	snprintf(what, sizeof(what), "force the transition of %d", (int)req.pid);
	req.flags = request_flags(&o);
	lp_request_add(&req, "force");
	return run_request(&req, &o);
}
