// SPDX-License-Identifier: MIT
/*
 * Injecting the runtime: find one thread at a safe point, borrow it to
 * load the runtime, let it go.
 *
 * Threads are looked at one at a time, so that no more than one is ever
 * stopped: first those /proc shows blocked in one of the libc functions a
 * thread may be borrowed in (target.c), then those running (they may be
 * in application code), each stopped with PTRACE_INTERRUPT, its stack
 * judged (stack.c) and, when it is not at a safe point, let go at once.
 * Threads in a system call that swapped their signal mask for its
 * duration (sigsuspend(), ppoll() or pselect() with a mask) are never
 * borrowed: the mask the kernel would put back is not one ptrace can
 * restore.  When no thread is at a safe point the search starts again,
 * a little later, until INJECT_WAIT_S have passed.
 *
 * The tracer gets SIGCHLD at every stop of a tracee, which the waits use;
 * while the borrowed thread runs the loader this process does not let
 * itself be interrupted (SIGINT and the like wait), since the thread
 * cannot be let go in the middle of a call.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

#include "inject/internal.h"

#define INJECT_WAIT_S	  10
#define STOP_WAIT_S	  2
#define LATE_STOP_WAIT_NS (10 * 1000000000ull)
#define RUNNING_PER_ROUND 16
#define MAX_NAMED	  3
#define FIRST_PAUSE_MS	  5
#define LONGEST_PAUSE_MS  100

/* Why one thread was not borrowed, for the error at the end. */
struct verdict {
	pid_t tid;
	char why[96];
};

struct search {
	struct lp_target tg;
	struct lp_stack *stack;
	struct lp_inject_stats *st;
	const char *runtime;
	struct verdict *verdicts;
	size_t nverdicts;
	size_t running_from; /* where the last round stopped among the running threads */
	bool done;
};

static void note(struct search *s, pid_t tid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void note(struct search *s, pid_t tid, const char *fmt, ...)
{
	struct verdict *v = NULL;
	va_list ap;

	for (size_t i = 0; i < s->nverdicts && !v; i++)
		if (s->verdicts[i].tid == tid)
			v = &s->verdicts[i];
	if (!v) {
		struct verdict *grown =
		    reallocarray(s->verdicts, s->nverdicts + 1, sizeof(*s->verdicts));

		if (!grown)
			return;
		s->verdicts = grown;
		v = &s->verdicts[s->nverdicts++];
		v->tid = tid;
	}
	va_start(ap, fmt);
	vsnprintf(v->why, sizeof(v->why), fmt, ap);
	va_end(ap);
}

/* A system call that replaced the signal mask until it returns. */
static bool swaps_mask(const struct user_regs_struct *r)
{
	switch ((long)r->orig_rax) {
	case SYS_rt_sigsuspend:
		return true;
	case SYS_ppoll:
		return r->r10 != 0;
	case SYS_pselect6:
		return r->r9 != 0;
	case SYS_epoll_pwait:
	case SYS_epoll_pwait2:
		return r->r8 != 0;
	default:
		return false;
	}
}

/* What /proc says: 1 worth stopping (*running set for a running one), 0 not now. */
static int screen(struct search *s, pid_t tid, bool *running)
{
	struct lp_proc_sys sys;
	const char *name = NULL;
	char tracer[32];
	uintptr_t entry;

	switch (lp_proc_state(s->tg.pid, tid)) {
	case 0:
	case 'Z':
	case 'X':
		return 0;
	case 'D':
		note(s, tid, "in uninterruptible sleep");
		return 0;
	case 'T':
	case 't':
		note(s, tid, "stopped");
		return 0;
	default:
		break;
	}
	if (lp_proc_status(s->tg.pid, tid, "TracerPid", tracer, sizeof(tracer)) &&
	    atoi(tracer) != 0) {
		note(s, tid, "traced by process %s", tracer);
		return 0;
	}
	if (!lp_proc_syscall(s->tg.pid, tid, &sys))
		return 0;
	*running = sys.running;
	if (sys.running)
		return 1;
	if (sys.nr < 0) {
		note(s, tid, "blocked outside a system call");
		return 0;
	}
	if (lp_target_kind(&s->tg, sys.pc) != LP_OBJ_LIBC ||
	    !lp_target_libc_func(&s->tg, sys.pc, &entry, &name) ||
	    !lp_target_is_safe(&s->tg, entry)) {
		note(s, tid, "blocked in %.40s", name ? name : "a system call outside libc");
		return 0;
	}
	return 1;
}

/* Stop one thread, judge it, borrow it or let it go.  -1 only for what ends the search. */
static int try_thread(struct search *s, pid_t tid, char *err, size_t errlen)
{
	char where[sizeof(s->st->where)], why[96];
	struct lp_tracee t;

	lp_tracee_init(&t, s->tg.pid, tid, s->tg.mem, s->st);
	s->st->attempts++;
	if (lp_tracee_stop(&t, lp_now_ns() + STOP_WAIT_S * 1000000000ull) < 0) {
		int e = errno;

		if (e == EPERM) {
			lp_set_err(err, errlen, "not permitted to trace it (ptrace: %s)",
				   strerror(e));
			return -1;
		}
		if (t.seized && e == ETIMEDOUT)
			note(s, tid, "did not stop within %d s", STOP_WAIT_S);
		/* A slow one is let go when it stops, its system call unharmed. */
		if (t.seized && lp_tracee_wait(&t, lp_now_ns() + LATE_STOP_WAIT_NS) == 0)
			lp_tracee_let_go(&t);
		return 0;
	}
	if (t.stop != LP_STOP_INTERRUPT) {
		note(s, tid, "a signal was arriving");
		lp_tracee_let_go(&t);
		return 0;
	}
	if (swaps_mask(&t.regs)) {
		note(s, tid, "in a system call with its own signal mask");
		lp_tracee_let_go(&t);
		return 0;
	}
	if (!lp_stack_safe(s->stack, &t.regs, where, sizeof(where), why, sizeof(why))) {
		note(s, tid, "%s", why);
		lp_tracee_let_go(&t);
		return 0;
	}
	s->st->thread = tid;
	snprintf(s->st->where, sizeof(s->st->where), "%s", where);
	s->done = true;
	return lp_borrow_load(&s->tg, &t, s->runtime, err, errlen);
}

/* One look at every thread: the blocked ones worth it first, then a few running. */
static int round_of(struct search *s, char *err, size_t errlen)
{
	pid_t *tids, *running;
	size_t n, nrunning = 0;
	int ret = 0;

	if (lp_proc_tasks(s->tg.pid, &tids, &n) < 0 || n == 0) {
		free(tids);
		lp_set_err(err, errlen, "the process exited");
		return -1;
	}
	running = calloc(n, sizeof(*running));
	for (size_t i = 0; running && i < n && !s->done && ret == 0; i++) {
		bool run = false;

		if (screen(s, tids[i], &run) <= 0)
			continue;
		if (run)
			running[nrunning++] = tids[i];
		else
			ret = try_thread(s, tids[i], err, errlen);
	}
	for (size_t k = 0; running && k < nrunning && k < RUNNING_PER_ROUND && !s->done && ret == 0;
	     k++)
		ret = try_thread(s, running[(s->running_from + k) % nrunning], err, errlen);
	s->running_from += RUNNING_PER_ROUND;
	free(running);
	free(tids);
	return ret;
}

static void name_thread(pid_t pid, pid_t tid, char *buf, size_t size)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)pid, (int)tid);
	f = fopen(path, "re");
	if (!f || !fgets(buf, (int)size, f))
		snprintf(buf, size, "?");
	buf[strcspn(buf, "\n")] = '\0';
	if (f)
		fclose(f);
}

/* "no thread ...: thread 12 (name): why, ... and N more" */
static void no_safe_point(const struct search *s, char *err, size_t errlen)
{
	size_t len;

	lp_set_err(err, errlen,
		   "no thread came to a point where it could load the runtime "
		   "within %d s",
		   INJECT_WAIT_S);
	for (size_t i = 0; i < s->nverdicts && i < MAX_NAMED; i++) {
		char name[32];

		name_thread(s->tg.pid, s->verdicts[i].tid, name, sizeof(name));
		len = strlen(err);
		snprintf(err + len, errlen - len, "%s thread %d (%s): %s", i ? "," : ":",
			 (int)s->verdicts[i].tid, name, s->verdicts[i].why);
	}
	len = strlen(err);
	if (s->nverdicts > MAX_NAMED)
		snprintf(err + len, errlen - len, " and %zu more", s->nverdicts - MAX_NAMED);
}

static int search(struct search *s, char *err, size_t errlen)
{
	uint64_t deadline = lp_now_ns() + INJECT_WAIT_S * 1000000000ull;
	long pause_ms = FIRST_PAUSE_MS;

	for (;;) {
		int ret = round_of(s, err, errlen);

		if (ret < 0 || s->done)
			return ret;
		if (lp_now_ns() >= deadline) {
			no_safe_point(s, err, errlen);
			return -1;
		}
		struct timespec ts = {0, pause_ms * 1000000};

		nanosleep(&ts, NULL);
		pause_ms = pause_ms * 2 > LONGEST_PAUSE_MS ? LONGEST_PAUSE_MS : pause_ms * 2;
	}
}

/*
 * SIGCHLD, blocked and at its default, wakes the waits of tracee.c; the
 * signals that would end this process wait until the borrowed thread is
 * back.
 */
struct signals {
	sigset_t mask;
	struct sigaction chld;
};

static void signals_enter(struct signals *old)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigset_t block;

	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGQUIT);
	sigaction(SIGCHLD, &dfl, &old->chld);
	sigprocmask(SIG_BLOCK, &block, &old->mask);
}

static void signals_leave(const struct signals *old)
{
	sigprocmask(SIG_SETMASK, &old->mask, NULL);
	sigaction(SIGCHLD, &old->chld, NULL);
}

int lp_inject(pid_t pid, const char *runtime, lp_inject_ready_fn ready, void *arg,
	      struct lp_inject_stats *st, char *err, size_t errlen)
{
	struct search s = {.st = st, .runtime = runtime};
	uint64_t start = lp_now_ns();
	struct signals old;
	int ret, nice;

	*st = (struct lp_inject_stats){0};
	if (lp_target_open(&s.tg, pid, runtime, err, errlen) < 0)
		return -1;
	if (ready && ready(arg, err, errlen) != 0) {
		lp_target_close(&s.tg);
		return -1;
	}
	s.stack = lp_stack_new(&s.tg, err, errlen);
	if (!s.stack) {
		lp_target_close(&s.tg);
		return -1;
	}
	nice = lp_inject_boost();
	signals_enter(&old);
	ret = search(&s, err, errlen);
	signals_leave(&old);
	lp_inject_unboost(nice);
	st->total_ns = lp_now_ns() - start;
	free(s.verdicts);
	lp_stack_free(s.stack);
	lp_target_close(&s.tg);
	return ret;
}
