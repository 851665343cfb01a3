// SPDX-License-Identifier: MIT
/*
 * Work on many processes at once (apply to several, list): one child of
 * this process per target, at most a given number at a time, each with its
 * standard output and error caught in memory files, so that the texts of
 * different targets never mix and one target that is slow to answer holds
 * up no other.  A child is a process of its own, and not a thread, because
 * the commands' code prints its errors itself, and because a ptrace tracer
 * is a process.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

struct running {
	pid_t child;
	size_t i;
	int out, err;
};

/* The whole content of memory file @fd, NUL-terminated (NULL without memory). */
static char *slurp(int fd)
{
	struct stat st;
	char *text;
	ssize_t n;

	if (fstat(fd, &st) < 0)
		st.st_size = 0;
	text = malloc((size_t)st.st_size + 1);
	if (!text)
		return NULL;
	n = st.st_size ? pread(fd, text, (size_t)st.st_size, 0) : 0;
	text[n > 0 ? n : 0] = '\0';
	return text;
}

static __attribute__((noreturn)) void child_main(const struct running *r, lp_pool_fn fn, void *arg)
{
	int ret;

	if (dup2(r->out, STDOUT_FILENO) < 0 || dup2(r->err, STDERR_FILENO) < 0)
		_exit(LP_EXIT_FAIL);
	ret = fn(r->i, arg);
	fflush(NULL);
	_exit(ret);
}

static int start(struct running *r, size_t i, lp_pool_fn fn, void *arg)
{
	r->i = i;
	r->out = memfd_create("lpatch-out", MFD_CLOEXEC);
	r->err = memfd_create("lpatch-err", MFD_CLOEXEC);
	if (r->out < 0 || r->err < 0) {
		if (r->out >= 0)
			close(r->out);
		return -1;
	}
	r->child = fork();
	if (r->child == 0)
		child_main(r, fn, arg);
	if (r->child < 0) {
		close(r->out);
		close(r->err);
		return -1;
	}
	return 0;
}

static void finish(struct running *r, int status, lp_pool_done_fn done, void *arg)
{
	char *out = slurp(r->out), *err = slurp(r->err);

	done(r->i, out ? out : "", err ? err : "", status, arg);
	free(out);
	free(err);
	close(r->out);
	close(r->err);
}

void lp_pool_run(size_t n, size_t parallel, lp_pool_fn fn, lp_pool_done_fn done, void *arg)
{
	struct running *run = calloc(parallel ? parallel : 1, sizeof(*run));
	size_t next = 0, nrun = 0;

	if (!run) {
		for (size_t i = 0; i < n; i++)
			done(i, "", "lpatch: out of memory\n", -1, arg);
		return;
	}
	/* An ignored SIGCHLD, inherited, would have the children reaped unseen. */
	signal(SIGCHLD, SIG_DFL);
	fflush(NULL);
	while (next < n || nrun) {
		int status;
		pid_t child;

		while (nrun < parallel && next < n) {
			if (start(&run[nrun], next, fn, arg) < 0) {
				char why[LP_ERR_LEN];

				snprintf(why, sizeof(why), "lpatch: cannot start a child: %s\n",
					 strerror(errno));
				done(next, "", why, -1, arg);
			} else {
				nrun++;
			}
			next++;
		}
		if (!nrun)
			continue;
		child = waitpid(-1, &status, 0);
		if (child < 0 && errno == EINTR)
			continue;
		for (size_t k = 0; k < nrun; k++) {
			if (child >= 0 && run[k].child != child)
				continue;
			/* No child left to wait for: none of them can be told apart. */
			finish(&run[k], child < 0 ? -1 : status, done, arg);
			run[k] = run[--nrun];
			break;
		}
	}
	free(run);
}
