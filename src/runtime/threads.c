// SPDX-License-Identifier: MIT
/*
 * Visiting the other threads of the process: run a function against each
 * thread's interrupted user context, all threads at once.
 *
 * A thread blocked in the kernel is not disturbed: /proc/self/task/TID/syscall
 * gives its user pc and sp, and its stack cannot change until it is woken.
 * Only threads that run user code get the visit signal; the handler
 * publishes its ucontext and waits, with no lock held, until the agent has
 * looked at (and possibly moved) it.  So no thread is stopped for longer than
 * the visit of its own context, and a thread interrupted inside malloc or
 * the loader cannot deadlock anything: the handler takes no lock at all.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "common/procfs.h"
#include "runtime.h"

#define VISIT_SIGNAL	 (SIGRTMAX - 2)
#define VISIT_TIMEOUT_MS 2000
#define RED_ZONE	 128

enum slot_state {
	SLOT_IDLE,	/* handled from /proc, or not a thread to signal */
	SLOT_WAITING,	/* signal sent */
	SLOT_COPYING,	/* the thread is copying its snapshot */
	SLOT_ARRIVED,	/* the thread is held in the handler, or its snapshot is done */
	SLOT_RELEASED,	/* the agent is done with it */
	SLOT_CANCELLED, /* gave up waiting: a late handler must not stop */
};

struct visit_slot {
	pid_t tid;
	_Atomic int state;
	void *uc;
	struct lp_snapshot *snap; /* a snapshot visit: copy, do not wait */
};

struct visit {
	struct visit_slot *slots;
	size_t n;
	_Atomic int arrivals; /* futex: bumped by every arriving handler */
};

static struct visit *_Atomic current_visit;
static _Atomic int visit_users;

/* What the visits cost the threads, for `status` (lp_threads_stops()). */
static _Atomic uint64_t stops, longest_stop_ns, longest_cpu_ns;
static _Atomic int most_at_once;

static long futex(_Atomic int *word, int op, int val, const struct timespec *ts)
{
	return syscall(SYS_futex, word, op, val, ts, NULL, 0);
}

static struct visit_slot *find_slot(struct visit *v, pid_t tid)
{
	size_t lo = 0, hi = v->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (v->slots[mid].tid == tid)
			return &v->slots[mid];
		if (v->slots[mid].tid < tid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * Copy the interrupted context and the live part of the stack, through
 * process_vm_readv so that an odd stack cannot fault the handler and the
 * sanitizers do not see reads of other frames.
 */
static void take_snapshot(struct lp_snapshot *snap, const ucontext_t *uc)
{
	const struct lp_task *t = &lp_current;
	uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
	uintptr_t lo = sp > RED_ZONE ? sp - RED_ZONE : 0, hi = lo + snap->bufsize;
	struct iovec local, remote;
	ssize_t got;

	for (int i = 0; i < NGREG; i++)
		snap->gregs[i] = (uint64_t)uc->uc_mcontext.gregs[i];
	snap->task = &lp_current;
	snap->fails = atomic_load(&lp_current.fails);
	snap->stack_lo = lo;
	snap->stack_len = 0;
	snap->stack_whole = false;
	if (!t->stack_hi || sp < t->stack_lo || sp >= t->stack_hi)
		return;
	if (hi >= t->stack_hi) {
		hi = t->stack_hi;
		snap->stack_whole = true;
	}
	local = (struct iovec){snap->buf, hi - lo};
	remote = (struct iovec){(void *)lo, hi - lo};
	got = process_vm_readv(lp_self_tid(), &local, 1, &remote, 1, 0);
	if (got > 0)
		snap->stack_len = (size_t)got;
	if (got != (ssize_t)(hi - lo))
		snap->stack_whole = false;
}

static uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The maximum of @max and @v, kept in @max. */
static void keep_max(_Atomic uint64_t *max, uint64_t v)
{
	uint64_t seen = atomic_load(max);

	while (v > seen && !atomic_compare_exchange_weak(max, &seen, v))
		;
}

/*
 * One visit ended: @ns nanoseconds in the handler, @cpu_ns of them on a
 * CPU (the rest it waited for one, or for the agent); @users threads were
 * in the handler with it.
 */
static void count_stop(uint64_t ns, uint64_t cpu_ns, int users)
{
	int most = atomic_load(&most_at_once);

	atomic_fetch_add(&stops, 1);
	keep_max(&longest_stop_ns, ns);
	keep_max(&longest_cpu_ns, cpu_ns);
	while (users > most && !atomic_compare_exchange_weak(&most_at_once, &most, users))
		;
}

static void visit_handler(int sig, siginfo_t *si, void *uc)
{
	int saved_errno = errno, users;
	struct visit_slot *slot;
	struct visit *v;
	int expected = SLOT_WAITING;
	uint64_t start, cpu_start;

	(void)sig;
	if (si->si_code != SI_TKILL || si->si_pid != getpid())
		goto out;
	start = clock_ns(CLOCK_MONOTONIC);
	cpu_start = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	users = atomic_fetch_add(&visit_users, 1) + 1;
	v = atomic_load(&current_visit);
	slot = v ? find_slot(v, (pid_t)syscall(SYS_gettid)) : NULL;
	if (slot && slot->snap) {
		if (atomic_compare_exchange_strong(&slot->state, &expected, SLOT_COPYING)) {
			take_snapshot(slot->snap, uc);
			atomic_store(&slot->state, SLOT_ARRIVED);
			atomic_fetch_add(&v->arrivals, 1);
			futex(&v->arrivals, FUTEX_WAKE_PRIVATE, 1, NULL);
		}
	} else if (slot) {
		slot->uc = uc;
		if (atomic_compare_exchange_strong(&slot->state, &expected, SLOT_ARRIVED)) {
			atomic_fetch_add(&v->arrivals, 1);
			futex(&v->arrivals, FUTEX_WAKE_PRIVATE, 1, NULL);
			while (atomic_load(&slot->state) == SLOT_ARRIVED)
				futex(&slot->state, FUTEX_WAIT_PRIVATE, SLOT_ARRIVED, NULL);
		}
	}
	count_stop(clock_ns(CLOCK_MONOTONIC) - start, clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu_start,
		   users);
	atomic_fetch_sub(&visit_users, 1);
out:
	errno = saved_errno;
}

/*
 * Since the runtime started: how many times a thread ran the visit
 * handler, the longest it stayed there (a stack copy, or a hold while code
 * is written) and the longest it ran there, and the most threads that were
 * in it at once.
 */
void lp_threads_stops(struct lp_stops *s)
{
	s->count = atomic_load(&stops);
	s->longest_ns = atomic_load(&longest_stop_ns);
	s->longest_cpu_ns = atomic_load(&longest_cpu_ns);
	s->most_at_once = atomic_load(&most_at_once);
}

/*
 * This thread's id, for process_vm_readv() and /proc: the process id would
 * stop working once the main thread exits, while the others go on.
 */
pid_t lp_self_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

int lp_visit_signal(void)
{
	return VISIT_SIGNAL;
}

int lp_threads_init(void)
{
	struct sigaction sa = {.sa_sigaction = visit_handler, .sa_flags = SA_SIGINFO | SA_RESTART};

	sigfillset(&sa.sa_mask);
	return sigaction(VISIT_SIGNAL, &sa, NULL);
}

static bool handler_is_ours(void)
{
	struct sigaction sa;

	return sigaction(VISIT_SIGNAL, NULL, &sa) == 0 && (sa.sa_flags & SA_SIGINFO) &&
	       sa.sa_sigaction == visit_handler;
}

static int cmp_tid(const void *a, const void *b)
{
	pid_t x = ((const struct visit_slot *)a)->tid, y = ((const struct visit_slot *)b)->tid;

	return (x > y) - (x < y);
}

static int grow_slots(struct visit *v, size_t *cap)
{
	struct visit_slot *grown = reallocarray(v->slots, *cap * 2, sizeof(*grown));

	if (!grown)
		return -1;
	memset(grown + *cap, 0, *cap * sizeof(*grown));
	v->slots = grown;
	*cap *= 2;
	return 0;
}

/* Every thread of the process but the calling one, sorted by tid. */
static int list_threads(struct visit *v)
{
	pid_t self = (pid_t)syscall(SYS_gettid);
	size_t cap = 64;
	struct dirent *de;
	DIR *dir = opendir("/proc/self/task");
	int ret = 0;

	if (!dir)
		return -1;
	v->n = 0;
	v->slots = calloc(cap, sizeof(*v->slots));
	if (!v->slots) {
		closedir(dir);
		return -1;
	}
	while ((de = readdir(dir))) {
		pid_t tid = (pid_t)atoi(de->d_name);

		if (tid <= 0 || tid == self)
			continue;
		if (v->n == cap && grow_slots(v, &cap) < 0) {
			ret = -1;
			break;
		}
		v->slots[v->n++].tid = tid;
	}
	closedir(dir);
	if (ret < 0) {
		free(v->slots);
		v->slots = NULL;
		return -1;
	}
	qsort(v->slots, v->n, sizeof(*v->slots), cmp_tid);
	return 0;
}

/*
 * Where a thread blocked in the kernel will resume: "NR args... sp pc" (NR is
 * -1 outside a system call, e.g. in a page fault or stopped).  Returns false
 * for a running or runnable thread, whose registers /proc cannot tell.
 */
static bool blocked_context(pid_t tid, long *nr, uintptr_t *pc, uintptr_t *sp)
{
	char buf[256], *tok, *save = NULL, *fields[9];
	int n = 0;

	if (!lp_read_task_file(0, tid, "syscall", buf, sizeof(buf)))
		return false;
	for (tok = strtok_r(buf, " \n", &save); tok && n < 9; tok = strtok_r(NULL, " \n", &save))
		fields[n++] = tok;
	if (n < 3 || strcmp(fields[0], "running") == 0)
		return false;
	/* "-1 sp pc" outside a system call, "nr a1..a6 sp pc" inside one. */
	*sp = strtoull(fields[n - 2], NULL, 16);
	*pc = strtoull(fields[n - 1], NULL, 16);
	*nr = strtol(fields[0], NULL, 10);
	return true;
}

/*
 * How many times the thread was given a CPU (the third field of
 * /proc/self/task/TID/schedstat): it moves whenever the thread ran.  A
 * small file, unlike "status", so reading it for a thousand threads is cheap.
 */
static unsigned long times_run(pid_t tid)
{
	unsigned long long run, wait, slices;
	char buf[96];

	if (!lp_read_task_file(0, tid, "schedstat", buf, sizeof(buf)) ||
	    sscanf(buf, "%llu %llu %llu", &run, &wait, &slices) != 3)
		return ULONG_MAX;
	return (unsigned long)slices;
}

/*
 * System calls that a signal handler ends with EINTR whatever SA_RESTART
 * says (signal(7)): a thread blocked in one is never signalled for a mere
 * check.
 */
bool lp_syscall_interruptible(long nr)
{
	switch (nr) {
	case SYS_epoll_wait:
	case SYS_epoll_pwait:
	case SYS_poll:
	case SYS_ppoll:
	case SYS_select:
	case SYS_pselect6:
	case SYS_nanosleep:
	case SYS_clock_nanosleep:
	case SYS_io_getevents:
	case SYS_msgrcv:
	case SYS_msgsnd:
	case SYS_semop:
	case SYS_semtimedop:
	case SYS_rt_sigtimedwait:
	case SYS_rt_sigsuspend:
	case SYS_pause:
		return true;
	default:
		return false;
	}
}

/* A signal set of the thread from its status file ("SigBlk", "SigPnd"); 0 if unknown. */
uint64_t lp_thread_sigset(pid_t tid, const char *field)
{
	char buf[2048], key[16];
	unsigned long long mask;
	const char *at;

	snprintf(key, sizeof(key), "\n%s:", field);
	if (!lp_read_task_file(0, tid, "status", buf, sizeof(buf)) || !(at = strstr(buf, key)) ||
	    sscanf(at + strlen(key), " %llx", &mask) != 1)
		return 0;
	return mask;
}

/*
 * A thread of process @pid (0: this one) that has exited: gone from /proc,
 * or a zombie (the main thread after pthread_exit() stays one until the
 * whole process ends).
 */
bool lp_thread_gone(pid_t pid, pid_t tid)
{
	char buf[512], *end;

	if (!lp_read_task_file(pid, tid, "stat", buf, sizeof(buf)))
		return true;
	end = strrchr(buf, ')');
	return end && (end[1] == '\0' || end[2] == 'Z' || end[2] == 'X');
}

/* Is the thread blocked in the kernel right now?  One small file only. */
bool lp_thread_blocked_now(pid_t tid)
{
	uintptr_t pc, sp;
	long nr;

	return blocked_context(tid, &nr, &pc, &sp);
}

bool lp_thread_read_blocked(struct lp_thread_ctx *ctx)
{
	ctx->switches = times_run(ctx->tid);
	return blocked_context(ctx->tid, &ctx->nr, &ctx->pc, &ctx->sp);
}

/*
 * True when a thread seen blocked by lp_thread_read_blocked() has not run
 * since: what was read of its stack in between holds.  Its run count was
 * read before its place, which /proc gives only for a thread off the CPU;
 * to run again it must be given a CPU, which moves the count.  So an
 * unchanged count alone says it is still where it was.
 */
bool lp_thread_still_blocked(const struct lp_thread_ctx *ctx)
{
	return ctx->switches != ULONG_MAX && times_run(ctx->tid) == ctx->switches;
}

static bool thread_exists(pid_t tid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/task/%d", (int)tid);
	return access(path, F_OK) == 0;
}

static int signal_thread(struct visit_slot *slot)
{
	atomic_store(&slot->state, SLOT_WAITING);
	if (syscall(SYS_tgkill, getpid(), slot->tid, VISIT_SIGNAL) == 0)
		return 1;
	/* Gone already: nothing of it is left to check. */
	atomic_store(&slot->state, SLOT_IDLE);
	return 0;
}

static long ms_left(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

static int serve_arrivals(struct visit *v, lp_visit_fn fn, void *arg, size_t *outstanding)
{
	int ret = 0;

	for (size_t i = 0; i < v->n; i++) {
		struct visit_slot *slot = &v->slots[i];
		ucontext_t *uc;

		if (atomic_load(&slot->state) != SLOT_ARRIVED)
			continue;
		uc = slot->uc;
		if (ret == 0) {
			struct lp_thread_ctx ctx = {
			    .tid = slot->tid,
			    .pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP],
			    .sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP],
			    .ucontext = uc,
			};

			ret = fn(&ctx, arg);
			if (ret > 0)
				ret = 0; /* already held: nothing better to ask for */
		}
		atomic_store(&slot->state, SLOT_RELEASED);
		futex(&slot->state, FUTEX_WAKE_PRIVATE, 1, NULL);
		(*outstanding)--;
	}
	return ret;
}

/* Wait for the signalled threads; one that never comes is an error. */
static int collect(struct visit *v, lp_visit_fn fn, void *arg, size_t outstanding, char *err,
		   size_t errlen)
{
	struct timespec deadline;
	int ret = 0;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += VISIT_TIMEOUT_MS / 1000;
	while (outstanding > 0) {
		int seen = atomic_load(&v->arrivals);
		long left;

		ret = serve_arrivals(v, fn, arg, &outstanding);
		if (ret < 0 || outstanding == 0)
			break;
		left = ms_left(&deadline);
		if (left <= 0)
			break;
		struct timespec ts = {left / 1000, (left % 1000) * 1000000};

		futex(&v->arrivals, FUTEX_WAIT_PRIVATE, seen, &ts);
	}
	for (size_t i = 0; i < v->n && ret == 0; i++) {
		struct visit_slot *slot = &v->slots[i];
		int expected = SLOT_WAITING;

		if (!atomic_compare_exchange_strong(&slot->state, &expected, SLOT_CANCELLED))
			continue;
		if (thread_exists(slot->tid)) {
			snprintf(err, errlen,
				 "thread %d did not answer signal %d within %d ms (does it block "
				 "signals?)",
				 (int)slot->tid, VISIT_SIGNAL, VISIT_TIMEOUT_MS);
			ret = -1;
		}
	}
	return ret;
}

/* Let every late or running handler leave before the slots go away. */
static void retire_visit(struct visit *v)
{
	for (size_t i = 0; i < v->n; i++) {
		int expected = SLOT_WAITING;

		atomic_compare_exchange_strong(&v->slots[i].state, &expected, SLOT_CANCELLED);
	}
	atomic_store(&current_visit, NULL);
	while (atomic_load(&visit_users) > 0) {
		/* A handler may have arrived just before it was cancelled. */
		for (size_t i = 0; i < v->n; i++) {
			int arrived = SLOT_ARRIVED;

			if (!v->slots[i].snap && atomic_compare_exchange_strong(
						     &v->slots[i].state, &arrived, SLOT_RELEASED))
				futex(&v->slots[i].state, FUTEX_WAKE_PRIVATE, 1, NULL);
		}
		sched_yield();
	}
	for (size_t i = 0; i < v->n; i++)
		if (v->slots[i].snap)
			v->slots[i].snap->arrived = atomic_load(&v->slots[i].state) == SLOT_ARRIVED;
	free(v->slots);
}

static size_t count_arrived(struct visit *v)
{
	size_t n = 0;

	for (size_t i = 0; i < v->n; i++)
		n += atomic_load(&v->slots[i].state) == SLOT_ARRIVED;
	return n;
}

/*
 * Have the threads of @snaps copy their registers and stacks, all at once;
 * each returns to what it was doing as soon as its copy is taken.  Waits at
 * most @timeout_ms; a thread that has not answered by then (it blocks the
 * signal) has snap->arrived false.
 */
int lp_threads_snapshot(struct lp_snapshot *snaps, size_t n, int timeout_ms, char *err,
			size_t errlen)
{
	struct visit v = {.n = n};
	struct timespec deadline;
	size_t outstanding = 0;

	if (!handler_is_ours()) {
		snprintf(err, errlen,
			 "signal %d, which lpatch uses to reach threads, was "
			 "taken over by the application",
			 VISIT_SIGNAL);
		return -1;
	}
	v.slots = calloc(n ? n : 1, sizeof(*v.slots));
	if (!v.slots) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		v.slots[i] = (struct visit_slot){.tid = snaps[i].tid, .snap = &snaps[i]};
	qsort(v.slots, n, sizeof(*v.slots), cmp_tid);
	atomic_store(&current_visit, &v);
	for (size_t i = 0; i < n; i++)
		outstanding += (size_t)signal_thread(&v.slots[i]);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_nsec += (long)timeout_ms * 1000000L;
	deadline.tv_sec += deadline.tv_nsec / 1000000000L;
	deadline.tv_nsec %= 1000000000L;
	for (;;) {
		int seen = atomic_load(&v.arrivals);
		long left = ms_left(&deadline);

		if (count_arrived(&v) >= outstanding || left <= 0)
			break;
		struct timespec ts = {left / 1000, (left % 1000) * 1000000};

		futex(&v.arrivals, FUTEX_WAIT_PRIVATE, seen, &ts);
	}
	retire_visit(&v);
	return 0;
}

/*
 * Run @fn for every other thread.  @fn gets pc and sp, and the ucontext when
 * the thread is held in the visit signal (it may then change the registers).
 * A blocked thread whose pc lies in [@lo, @hi) is signalled anyway, so that
 * @fn sees its full context; @fn may also return 1 to ask for that.  With
 * @runs, a blocked thread's ctx also has its run count, for
 * lp_thread_still_blocked(): one more /proc read per thread, which a caller
 * that only looks at pc and sp is spared.
 */
int lp_threads_visit(lp_visit_fn fn, uintptr_t lo, uintptr_t hi, void *arg, bool runs, char *err,
		     size_t errlen)
{
	struct visit v = {0};
	size_t outstanding = 0;
	int ret = 0;

	if (!handler_is_ours()) {
		snprintf(err, errlen,
			 "signal %d, which lpatch uses to reach threads, was "
			 "taken over by the application",
			 VISIT_SIGNAL);
		return -1;
	}
	if (list_threads(&v) < 0) {
		snprintf(err, errlen, "cannot list the threads of the process: %s",
			 strerror(errno));
		return -1;
	}
	atomic_store(&current_visit, &v);
	for (size_t i = 0; i < v.n && ret >= 0; i++) {
		struct lp_thread_ctx ctx = {.tid = v.slots[i].tid};
		bool blocked = runs ? lp_thread_read_blocked(&ctx)
				    : blocked_context(ctx.tid, &ctx.nr, &ctx.pc, &ctx.sp);

		if (blocked && (ctx.pc < lo || ctx.pc >= hi)) {
			ret = fn(&ctx, arg);
			if (ret <= 0)
				continue;
			ret = 0;
		}
		outstanding += (size_t)signal_thread(&v.slots[i]);
	}
	if (ret >= 0)
		ret = collect(&v, fn, arg, outstanding, err, errlen);
	retire_visit(&v);
	return ret < 0 ? -1 : 0;
}
