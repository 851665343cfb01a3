// SPDX-License-Identifier: MIT
/*
 * Threads that block lpatch's signals, stopped while code is written or
 * stacks are scanned.  Writing a function's
 * entry puts an int3 in the way of every thread for a moment (text.c); a
 * thread that blocks SIGTRAP and runs into it would not get the handler:
 * the kernel resets SIGTRAP to its default action and the process dies.
 * Such threads (a worker that blocks every signal is common) are stopped
 * for the write instead, by a short-lived helper process that ptraces them:
 * PTRACE_SEIZE and PTRACE_INTERRUPT stop a thread whatever its signal mask,
 * without delivering anything to it.  One inside the bytes being rewritten
 * is moved to the same instruction of their relocated copy, as text.c does
 * for the others; then all are let go.  No other thread is stopped.  A
 * thread that blocks the visit signal (threads.c) is stopped the same way,
 * so that a visit finds it stopped, reads it from /proc and does not wait
 * for an answer that cannot come.
 *
 * The helper is a copy of this process made with a raw clone() (no
 * pthread_atfork handlers: the caller holds lp_mutex), whose exit signal is
 * 0 so that the application's SIGCHLD handling never sees it.  It makes
 * only system calls.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime.h"

#define MAX_BLOCKERS   64
#define HELPER_WAIT_MS 2000

struct lp_stopper {
	pid_t helper;
	int to_helper, from_helper;
};

static pid_t blockers[MAX_BLOCKERS];
static int blocker_sig[MAX_BLOCKERS];
static size_t nblockers;

/*
 * Does thread @tid block SIGTRAP or the visit signal?  Either makes it a
 * thread that must be stopped (/proc/self/task/TID/status, "SigBlk:").
 */
static bool blocks_ours(pid_t tid)
{
	uint64_t mask = lp_thread_sigset(tid, "SigBlk");

	return mask & (1ull << (SIGTRAP - 1) | 1ull << (lp_visit_signal() - 1));
}

static int find_blockers(char *err, size_t errlen)
{
	pid_t self = (pid_t)syscall(SYS_gettid);
	DIR *dir = opendir("/proc/self/task");
	struct dirent *de;

	nblockers = 0;
	if (!dir) {
		snprintf(err, errlen, "cannot list the threads of the process: %s",
			 strerror(errno));
		return -1;
	}
	while ((de = readdir(dir))) {
		pid_t tid = (pid_t)atoi(de->d_name);

		if (tid <= 0 || tid == self || !blocks_ours(tid))
			continue;
		if (nblockers == MAX_BLOCKERS) {
			snprintf(err, errlen, "more than %d threads block lpatch's signals",
				 MAX_BLOCKERS);
			closedir(dir);
			return -1;
		}
		blockers[nblockers++] = tid;
	}
	closedir(dir);
	return 0;
}

/* In the helper: a stopped thread inside the displaced bytes goes to their copy. */
static void move_out(pid_t tid, const struct lp_ops *ops)
{
	const struct lp_prologue *p;
	struct user_regs_struct regs;

	if (!ops || ptrace(PTRACE_GETREGS, tid, NULL, &regs) < 0)
		return;
	p = &ops->prologue;
	if (regs.rip <= p->site || regs.rip >= p->site + p->len)
		return;
	for (size_t i = 0; i < p->ninsns; i++) {
		if (regs.rip == p->site + p->insn_off[i]) {
			regs.rip = ops->orig + ops->insn_map[i];
			ptrace(PTRACE_SETREGS, tid, NULL, &regs);
			return;
		}
	}
}

/* In the helper: stop one thread; false when it could not be traced (it may be gone). */
static bool stop_one(size_t i, const struct lp_ops *ops)
{
	pid_t tid = blockers[i];
	int status;

	if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) < 0) {
		/*
		 * Gone, or exiting: the kernel refuses to trace a thread whose
		 * exit has begun (EPERM), and glibc blocks every signal in a
		 * thread that returns from its start routine, so such a thread
		 * is found among the blockers.  It runs no user code again.
		 */
		if (errno != ESRCH && !(errno == EPERM && lp_thread_gone(getppid(), tid)))
			return false;
		blockers[i] = 0;
		return true;
	}
	if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) < 0 || waitpid(tid, &status, __WALL) != tid ||
	    !WIFSTOPPED(status)) {
		blockers[i] = 0;
		return true; /* exited meanwhile */
	}
	/* A signal-delivery stop is a stop too; the signal goes back at detach. */
	if (status >> 16 == 0)
		blocker_sig[i] = WSTOPSIG(status);
	move_out(tid, ops);
	return true;
}

static __attribute__((noreturn)) void helper_main(struct lp_stopper *s, const struct lp_ops *ops)
{
	char c = 0;
	bool ok = true;

	if (read(s->to_helper, &c, 1) != 1)
		_exit(1);
	for (size_t i = 0; i < nblockers && ok; i++)
		ok = stop_one(i, ops);
	c = ok ? 'S' : 'F';
	if (write(s->from_helper, &c, 1) == 1 && ok && read(s->to_helper, &c, 1) < 0)
		c = 0; /* the parent went away: let go all the same */
	for (size_t i = 0; i < nblockers; i++)
		if (blockers[i])
			ptrace(PTRACE_DETACH, blockers[i], NULL, (void *)(long)blocker_sig[i]);
	_exit(0);
}

static bool wait_byte(int fd, char *c)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	return poll(&pfd, 1, HELPER_WAIT_MS) == 1 && read(fd, c, 1) == 1;
}

static void reap(struct lp_stopper *s)
{
	close(s->to_helper);
	close(s->from_helper);
	waitpid(s->helper, NULL, __WALL);
	free(s);
}

/*
 * Stop every thread that blocks SIGTRAP or the visit signal, moving one found inside the bytes
 * @ops's jump replaces (NULL: a jump being removed, nothing to move).
 * *@out is NULL when there is none.  Release them with lp_stopper_release().
 */
int lp_stop_trap_blockers(const struct lp_ops *ops, struct lp_stopper **out, char *err,
			  size_t errlen)
{
	int down[2], up[2];
	struct lp_stopper *s;
	pid_t parent;
	char c = 'g';

	*out = NULL;
	if (find_blockers(err, errlen) < 0)
		return -1;
	if (!nblockers)
		return 0;
	memset(blocker_sig, 0, sizeof(blocker_sig));
	s = calloc(1, sizeof(*s));
	if (!s || pipe2(down, O_CLOEXEC) < 0) {
		free(s);
		snprintf(err, errlen, "cannot stop the threads that block lpatch's signals: %s",
			 strerror(errno));
		return -1;
	}
	if (pipe2(up, O_CLOEXEC) < 0) {
		close(down[0]);
		close(down[1]);
		free(s);
		snprintf(err, errlen, "cannot stop the threads that block lpatch's signals: %s",
			 strerror(errno));
		return -1;
	}
	parent = getpid();
	s->helper = (pid_t)syscall(SYS_clone, 0ul, NULL, NULL, NULL, 0ul);
	if (s->helper == 0) {
		/*
		 * Ends with the process it serves: its read of the pipe sees the
		 * end only once every copy of the write end is closed, and a fork()
		 * in another thread of the parent may hold one.
		 */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
			_exit(1);
		close(down[1]);
		close(up[0]);
		s->to_helper = down[0];
		s->from_helper = up[1];
		helper_main(s, ops);
	}
	close(down[0]);
	close(up[1]);
	s->to_helper = down[1];
	s->from_helper = up[0];
	if (s->helper < 0) {
		snprintf(err, errlen, "cannot stop the threads that block lpatch's signals: %s",
			 strerror(errno));
		reap(s);
		return -1;
	}
	/* Yama's ptrace_scope 1 lets only a named tracer attach to us. */
	prctl(PR_SET_PTRACER, s->helper, 0, 0, 0);
	if (write(s->to_helper, &c, 1) != 1 || !wait_byte(s->from_helper, &c) || c != 'S') {
		snprintf(err, errlen,
			 "thread %d blocks signals and cannot be stopped (ptrace not "
			 "permitted?)",
			 (int)blockers[0]);
		reap(s);
		return -1;
	}
	*out = s;
	return 0;
}

void lp_stopper_release(struct lp_stopper *s)
{
	char c = 'D';

	if (!s)
		return;
	if (write(s->to_helper, &c, 1) != 1)
		c = 0; /* the helper is gone: its tracees were let go with it */
	reap(s);
}
