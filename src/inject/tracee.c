// SPDX-License-Identifier: MIT
/*
 * Stopping one thread of the target for a moment with ptrace, and letting
 * it go as if nothing happened.
 *
 * PTRACE_SEIZE attaches without stopping anything and PTRACE_INTERRUPT
 * stops the one thread, whatever its signal mask, without a signal: no
 * handler of the application runs, no SIGCHLD reaches its parent.  A
 * thread blocked in a system call comes out of it for the stop.  The
 * kernel restarts the call on resume when it ended with one of the
 * ERESTART codes (read, accept, futex; nanosleep through restart_syscall
 * with its original deadline), the way it does after a stop signal.  A few
 * calls end with a plain EINTR instead (epoll_wait, semop, sigtimedwait, a
 * socket with a timeout): when nothing else could have interrupted them,
 * no signal pending, they are restarted here by running the same syscall
 * instruction again, so the application never sees that EINTR.
 *
 * Every stop is timed, from the moment waitpid() reports it to the
 * resumption, and counted in the injection's statistics.  Waits are bounded: SIGCHLD, which the
 * kernel sends the tracer at each stop, is waited for with a deadline.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "inject/internal.h"

#define LATE_STOP_WAIT_NS (10 * 1000000000ull)
#define BOOST		  10

uint64_t lp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int lp_mem_read(int mem, uintptr_t addr, void *buf, size_t len)
{
	ssize_t n = pread(mem, buf, len, (off_t)addr);

	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		errno = EIO;
	return -1;
}

int lp_mem_write(int mem, uintptr_t addr, const void *buf, size_t len)
{
	ssize_t n = pwrite(mem, buf, len, (off_t)addr);

	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		errno = EIO;
	return -1;
}

/*
 * While this process holds threads of another stopped, it had better get
 * the CPU whenever it wants it: a higher priority where it may take one
 * (root), for as long as it injects.  Returns the niceness to go back to.
 */
int lp_inject_boost(void)
{
	int old;

	errno = 0;
	old = getpriority(PRIO_PROCESS, 0);
	if (errno == 0)
		setpriority(PRIO_PROCESS, 0, old - BOOST < PRIO_MIN ? PRIO_MIN : old - BOOST);
	return old;
}

void lp_inject_unboost(int old)
{
	setpriority(PRIO_PROCESS, 0, old);
}

void lp_tracee_init(struct lp_tracee *t, pid_t pid, pid_t tid, int mem, struct lp_inject_stats *st)
{
	*t = (struct lp_tracee){.pid = pid, .tid = tid, .mem = mem, .st = st};
}

/* Wait for @t's next event, at most until @deadline (lp_now_ns() time). */
static int wait_event(struct lp_tracee *t, uint64_t deadline, int *status)
{
	sigset_t chld;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		pid_t got = waitpid(t->tid, status, WNOHANG | __WALL);
		uint64_t now;
		struct timespec left;

		if (got == t->tid)
			return 0;
		if (got < 0 && errno != EINTR)
			return -1;
		now = lp_now_ns();
		if (now >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		left.tv_sec = (time_t)((deadline - now) / 1000000000u);
		left.tv_nsec = (long)((deadline - now) % 1000000000u);
		/* The tracer gets a SIGCHLD at every stop of a tracee. */
		sigtimedwait(&chld, NULL, &left);
	}
}

static void count_stop(struct lp_tracee *t)
{
	uint64_t took = lp_now_ns() - t->since;

	t->st->stops++;
	if (took > t->st->longest_stop_ns) {
		t->st->longest_stop_ns = took;
		t->st->longest_tid = t->tid;
	}
}

/*
 * Wait for the stop @t is heading for; on a stop read its registers.
 * Returns 0 (t->stop says which kind), or -1: gone (ESRCH), timed out.
 */
int lp_tracee_wait(struct lp_tracee *t, uint64_t deadline)
{
	int status;

	if (wait_event(t, deadline, &status) < 0)
		return -1;
	if (WIFEXITED(status) || WIFSIGNALED(status)) {
		t->seized = false;
		t->stop = LP_STOP_EXITED;
		errno = ESRCH;
		return -1;
	}
	t->stopped = true;
	t->since = lp_now_ns();
	t->sig = 0;
	if (status >> 16 == PTRACE_EVENT_STOP)
		t->stop = WSTOPSIG(status) == SIGTRAP ? LP_STOP_INTERRUPT : LP_STOP_GROUP;
	else {
		t->stop = LP_STOP_SIGNAL;
		t->sig = WSTOPSIG(status);
	}
	if (ptrace(PTRACE_GETREGS, t->tid, NULL, &t->regs) < 0)
		return -1;
	return 0;
}

/* Attach to the thread and ask it to stop; 0, or -1 (errno: EPERM, ESRCH). */
int lp_tracee_interrupt(struct lp_tracee *t)
{
	if (ptrace(PTRACE_SEIZE, t->tid, NULL, NULL) < 0)
		return -1;
	t->seized = true;
	return (int)ptrace(PTRACE_INTERRUPT, t->tid, NULL, NULL);
}

/* Attach to the thread and stop it; 0, or -1 (errno: EPERM, ESRCH, ETIMEDOUT). */
int lp_tracee_stop(struct lp_tracee *t, uint64_t deadline)
{
	if (lp_tracee_interrupt(t) < 0)
		return -1;
	return lp_tracee_wait(t, deadline);
}

/* Run the thread again from its stop, with @regs (NULL: as they are). */
int lp_tracee_resume(struct lp_tracee *t, const struct user_regs_struct *regs)
{
	if (regs && ptrace(PTRACE_SETREGS, t->tid, NULL, regs) < 0)
		return -1;
	if (ptrace(PTRACE_CONT, t->tid, NULL, NULL) < 0)
		return -1;
	count_stop(t);
	t->stopped = false;
	return 0;
}

/*
 * Let the thread go, with @regs (NULL: as they are).  A signal whose
 * delivery it was stopped for is delivered now.
 */
int lp_tracee_release(struct lp_tracee *t, const struct user_regs_struct *regs)
{
	int ret = 0;

	if (!t->seized)
		return 0;
	/* Only a stopped tracee can be detached: a slow one is waited for. */
	if (!t->stopped && lp_tracee_wait(t, lp_now_ns() + LATE_STOP_WAIT_NS) < 0)
		return t->seized ? -1 : 0;
	if (t->stopped && regs && ptrace(PTRACE_SETREGS, t->tid, NULL, regs) < 0)
		ret = -1;
	if (ptrace(PTRACE_DETACH, t->tid, NULL, (void *)(long)t->sig) < 0 && errno != ESRCH)
		ret = -1;
	if (t->stopped)
		count_stop(t);
	t->seized = t->stopped = false;
	return ret;
}

/* Is a signal pending that the thread would take: one that may have ended its call? */
static bool signal_pending(const struct lp_tracee *t)
{
	static const char *const keys[] = {"SigPnd", "ShdPnd", "SigBlk"};
	uint64_t set[3];

	if (!lp_proc_sigsets(t->pid, t->tid, keys, 3, set))
		return true; /* cannot tell: leave the call as it ended */
	return ((set[0] | set[1]) & ~set[2]) != 0;
}

/*
 * @regs, read at an interrupt stop: if the stop ended a system call with
 * EINTR and no signal can have, make the thread run the call again.  The
 * instruction that entered the kernel (syscall, or int $0x80) is two bytes
 * long, as the kernel's own restarts assume.  True when @regs was changed.
 */
bool lp_tracee_restart_eintr(const struct lp_tracee *t, struct user_regs_struct *regs)
{
	if ((long)regs->orig_rax < 0 || (long)regs->rax != -EINTR || signal_pending(t))
		return false;
	regs->rax = regs->orig_rax;
	regs->rip -= 2;
	return true;
}

/* Let a thread go that was only looked at: its system call goes on unharmed. */
int lp_tracee_let_go(struct lp_tracee *t)
{
	struct user_regs_struct regs = t->regs;

	if (t->stopped && t->stop != LP_STOP_SIGNAL && lp_tracee_restart_eintr(t, &regs))
		return lp_tracee_release(t, &regs);
	return lp_tracee_release(t, NULL);
}
