// SPDX-License-Identifier: MIT
/*
 * The commands that change a process's patches or their transition:
 * apply, revert, force and signal.  apply and revert start a transition
 * and wait for it (wait.c); force and signal act on the one in progress.
 * apply injects the runtime into a process that has none (ensure.c) and
 * takes several processes at once, or --all of those the patch concerns
 * (fleet.c).
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

enum { OPT_NO_WAIT = 0x100, OPT_TIMEOUT, OPT_ALL, OPT_JSON };

/* Options of the four commands; each accepts the ones its table lists. */
struct change_opts {
	bool no_wait;
	bool quiet;
	bool verbose;
	bool all;  /* apply: every process the patch concerns */
	bool json; /* apply: the result table as JSON */
	int timeout;
};

/* apply: those of revert, and the choice of processes. */
static const struct option apply_opts[] = {
    {"no-wait", no_argument, NULL, OPT_NO_WAIT},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"all", no_argument, NULL, OPT_ALL},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* revert: starts a transition and waits for it as apply does. */
static const struct option wait_opts[] = {
    {"no-wait", no_argument, NULL, OPT_NO_WAIT},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* force and signal: one short answer about the transition in progress. */
static const struct option nudge_opts[] = {
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
		case OPT_ALL:
			o->all = true;
			break;
		case OPT_JSON:
			o->json = true;
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

/* Print the runtime's success message unless --quiet; frees @answer. */
static int print_answer(char *answer, const struct change_opts *o)
{
	size_t len = strlen(answer);

	if (!o->quiet && len) {
		fputs(answer, stdout);
		if (answer[len - 1] != '\n')
			putchar('\n');
	}
	free(answer);
	return LP_EXIT_OK;
}

/*
 * Send an apply or revert @req.  With --no-wait the runtime answers once
 * the transition has started; otherwise we wait for it to complete, as
 * @how says.
 */
static int change(struct lp_request *req, const struct change_opts *o, const struct lp_wait *how,
		  unsigned int flags)
{
	enum lp_req_status st;
	char *answer;

	req->timeout = o->timeout;
	req->flags = flags;
	req->waiting_for = "the transition";
	if (o->no_wait) {
		lp_request_add(req, "nowait");
		st = lp_request(req, &answer);
	} else {
		st = lp_wait_transition(req, how, &answer);
	}
	return st == LP_REQ_OK ? print_answer(answer, o) : LP_EXIT_FAIL;
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

int lp_apply_one(pid_t pid, const struct lp_apply_target *a, unsigned int flags, bool quiet,
		 struct lp_runtime_report *rep)
{
	static const struct lp_wait how = {.target = "patched", .reverse = true};
	struct change_opts o = {.no_wait = a->no_wait, .quiet = quiet, .timeout = a->timeout};
	char what[PATH_MAX + 64];
	struct lp_request req = {.pid = pid, .fd = a->patch_fd, .what = what};

	snprintf(what, sizeof(what), "apply %s to %d", a->arg, (int)pid);
	rep->flags = flags;
	if (lp_ensure_runtime(pid, what, a->patch_fd, rep) < 0)
		return LP_EXIT_FAIL;
	lp_request_add(&req, "apply");
	lp_request_add(&req, a->path);
	return change(&req, &o, &how, flags);
}

/* PID... PATCH.so, or --all PATCH.so: the PIDs, sorted and each once. */
static int target_pids(int argc, char **argv, const struct change_opts *o, pid_t **pids, size_t *n)
{
	int have = argc - optind;
	size_t out = 0;

	*pids = NULL;
	*n = 0;
	if (o->all)
		return lp_expect_args(argv[0], have, 1, "[OPTIONS] --all PATCH.so");
	if (have < 2)
		return lp_expect_args(argv[0], have, 2, "[OPTIONS] PID... PATCH.so");
	*pids = calloc((size_t)have - 1, sizeof(**pids));
	if (!*pids) {
		lp_error("out of memory");
		return LP_EXIT_FAIL;
	}
	for (int i = optind; i < argc - 1; i++) {
		int ret = lp_parse_pid(argv[i], &(*pids)[(*n)++]);

		if (ret != LP_EXIT_OK) {
			free(*pids);
			*pids = NULL;
			return ret;
		}
	}
	lp_sort_pids(*pids, *n);
	for (size_t i = 0; i < *n; i++)
		if (!out || (*pids)[out - 1] != (*pids)[i])
			(*pids)[out++] = (*pids)[i];
	*n = out;
	return LP_EXIT_OK;
}

/* --all: the processes that map an object the patch names. */
static int select_all(const struct lp_apply_target *a, pid_t **pids, size_t *n)
{
	struct lp_patch_info pi;
	char err[LP_ERR_LEN];
	int ret;

	if (lp_patch_info_read(a->patch_fd, &pi, err, sizeof(err)) < 0) {
		lp_error("apply %s: %s", a->arg, err);
		return LP_EXIT_FAIL;
	}
	ret = lp_select_processes(&pi, pids, n, err, sizeof(err));
	lp_patch_info_free(&pi);
	if (ret < 0) {
		lp_error("apply %s: %s", a->arg, err);
		return LP_EXIT_FAIL;
	}
	if (*n == 0) {
		lp_error("apply %s: no process maps an object the patch names", a->arg);
		return LP_EXIT_FAIL;
	}
	return LP_EXIT_OK;
}

int lp_cmd_apply(int argc, char **argv)
{
	char path[PATH_MAX];
	struct change_opts o = {0};
	struct lp_apply_target a = {.path = path};
	struct lp_runtime_report rep = {0};
	pid_t *pids = NULL;
	size_t n = 0;
	int ret = parse_opts(argc, argv, apply_opts, ":hvq", &o);

	if (ret >= 0)
		return ret;
	ret = target_pids(argc, argv, &o, &pids, &n);
	if (ret != LP_EXIT_OK)
		return ret;
	a.arg = argv[argc - 1];
	a.timeout = o.timeout;
	a.no_wait = o.no_wait;
	a.verbose = o.verbose;
	a.quiet = o.quiet;
	a.json = o.json;
	a.patch_fd = open_patch(a.arg, path, sizeof(path));
	if (a.patch_fd < 0) {
		free(pids);
		return LP_EXIT_FAIL;
	}
	if (o.all)
		ret = select_all(&a, &pids, &n);
	if (ret == LP_EXIT_OK && n == 1 && !o.json && !o.all)
		ret = lp_apply_one(pids[0], &a, request_flags(&o), o.quiet, &rep);
	else if (ret == LP_EXIT_OK)
		ret = lp_apply_many(pids, n, &a);
	close(a.patch_fd);
	free(pids);
	return ret;
}

int lp_cmd_revert(int argc, char **argv)
{
	char what[512];
	struct change_opts o = {0};
	struct lp_request req = {.fd = -1, .what = what};
	struct lp_wait how = {.target = "unpatched"};
	int ret = parse_opts(argc, argv, wait_opts, ":hvq", &o);

	if (ret >= 0)
		return ret;
	ret = lp_expect_args(argv[0], argc - optind, 2, "[OPTIONS] PID NAME");
	if (ret == LP_EXIT_OK)
		ret = lp_parse_pid(argv[optind], &req.pid);
	if (ret != LP_EXIT_OK)
		return ret;
	how.name = argv[optind + 1];
	snprintf(what, sizeof(what), "revert %s in %d", how.name, (int)req.pid);
	lp_request_add(&req, "revert");
	lp_request_add(&req, how.name);
	return change(&req, &o, &how, request_flags(&o));
}

/*
 * force and signal: the verb alone, about the transition in progress;
 * "@action PID" is the context of a failure.
 */
static int nudge(int argc, char **argv, const char *verb, const char *action)
{
	char what[96];
	struct change_opts o = {0};
	struct lp_request req = {.fd = -1, .what = what};
	char *answer;
	int ret = parse_opts(argc, argv, nudge_opts, ":hq", &o);

	if (ret >= 0)
		return ret;
	ret = lp_expect_args(argv[0], argc - optind, 1, "[--quiet] PID");
	if (ret == LP_EXIT_OK)
		ret = lp_parse_pid(argv[optind], &req.pid);
	if (ret != LP_EXIT_OK)
		return ret;
	snprintf(what, sizeof(what), "%s %d", action, (int)req.pid);
	req.flags = request_flags(&o);
	lp_request_add(&req, verb);
	if (lp_request(&req, &answer) != LP_REQ_OK)
		return LP_EXIT_FAIL;
	return print_answer(answer, &o);
}

int lp_cmd_force(int argc, char **argv)
{
	return nudge(argc, argv, "force", "force the transition of");
}

int lp_cmd_signal(int argc, char **argv)
{
	return nudge(argc, argv, "signal", "signal the threads of");
}
