// SPDX-License-Identifier: MIT
/*
 * The thread pointer and stack pointer of every thread the runtime does
 * not know yet, for it to register them (runtime/injected.c).  One thread
 * at a time is stopped, just long enough for PTRACE_GETREGS, and let go,
 * its system call unharmed (tracee.c).  Threads that block every signal
 * are read like the others.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inject/internal.h"

#define STOP_WAIT_S 10

static int add(struct lp_thread_rec **recs, size_t *n, size_t *cap, const struct lp_tracee *t)
{
	if (*n == *cap) {
		size_t ncap = *cap ? 2 * *cap : 64;
		struct lp_thread_rec *v = reallocarray(*recs, ncap, sizeof(*v));

		if (!v)
			return -1;
		*recs = v;
		*cap = ncap;
	}
	(*recs)[(*n)++] = (struct lp_thread_rec){t->tid, t->regs.fs_base, t->regs.rsp};
	return 0;
}

static bool traced(const struct lp_tracee *t)
{
	char tracer[32];

	return lp_proc_status(t->pid, t->tid, "TracerPid", tracer, sizeof(tracer)) &&
	       atoi(tracer) != 0;
}

/* Stop, read and let go one thread; -1 only for what ends the collection. */
static int read_one(struct lp_tracee *t, struct lp_thread_rec **recs, size_t *n, size_t *cap,
		    char *err, size_t errlen)
{
	int ret = 0;

	if (lp_tracee_stop(t, lp_now_ns() + STOP_WAIT_S * 1000000000ull) < 0) {
		/* Traced by someone else (the runtime's stopper, a moment): next time. */
		if (errno == EPERM && !traced(t)) {
			lp_set_err(err, errlen, "not permitted to trace thread %d (ptrace: %s)",
				   (int)t->tid, strerror(errno));
			return -1;
		}
		lp_tracee_release(t, NULL);
		return 0; /* gone */
	}
	if (add(recs, n, cap, t) < 0) {
		lp_set_err(err, errlen, "out of memory");
		ret = -1;
	}
	lp_tracee_let_go(t);
	return ret;
}

static int collect(pid_t pid, int mem, const pid_t *tids, size_t ntids, const pid_t *known,
		   size_t nknown, struct lp_thread_rec **recs, size_t *n,
		   struct lp_inject_stats *st, char *err, size_t errlen)
{
	size_t cap = 0;
	int ret = 0;

	for (size_t i = 0; i < ntids && ret == 0; i++) {
		char state = lp_proc_state(pid, tids[i]);
		struct lp_tracee t;

		if (lp_tid_in(tids[i], known, nknown) || !state || state == 'Z' || state == 'X')
			continue;
		lp_tracee_init(&t, pid, tids[i], mem, st);
		ret = read_one(&t, recs, n, &cap, err, errlen);
	}
	return ret;
}

int lp_inject_collect(pid_t pid, const pid_t *known, size_t nknown, struct lp_thread_rec **recs,
		      size_t *n, struct lp_inject_stats *st, char *err, size_t errlen)
{
	char path[64];
	pid_t *tids;
	size_t ntids;
	sigset_t chld, old;
	struct sigaction dfl = {.sa_handler = SIG_DFL}, old_chld;
	int mem, ret, nice;

	*recs = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)lp_proc_live_thread(pid));
	mem = open(path, O_RDONLY | O_CLOEXEC);
	if (mem < 0) {
		lp_set_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (lp_proc_tasks(pid, &tids, &ntids) < 0) {
		lp_set_err(err, errlen, "cannot list the threads of process %d: %s", (int)pid,
			   strerror(errno));
		close(mem);
		return -1;
	}
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigaction(SIGCHLD, &dfl, &old_chld);
	sigprocmask(SIG_BLOCK, &chld, &old);
	nice = lp_inject_boost();
	ret = collect(pid, mem, tids, ntids, known, nknown, recs, n, st, err, errlen);
	lp_inject_unboost(nice);
	sigprocmask(SIG_SETMASK, &old, NULL);
	sigaction(SIGCHLD, &old_chld, NULL);
	free(tids);
	close(mem);
	if (ret < 0) {
		free(*recs);
		*recs = NULL;
		*n = 0;
	}
	return ret;
}
