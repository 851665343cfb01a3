/* SPDX-License-Identifier: MIT */
/*
 * many - a thousand threads in one transition (tests/e2e/74-many-threads.sh,
 * patch stress/many_fix).
 *
 *   start N      start N waiting threads: a quarter in pthread_cond_wait()
 *                ("cwait"), a quarter in a raw FUTEX_WAIT ("fwait"), half
 *                in epoll_wait() on an eventfd that is never written
 *                ("ewait"); then two "busy" threads calling manyval() in a
 *                loop.  Replies "started N" once every waiter sleeps in
 *                its system call, "error limit ..." when the system does
 *                not allow that many threads
 *   mark         remember every waiter's context-switch count: "marked"
 *   woken        "woken W": waiters whose count moved since "mark" (a
 *                sleeping thread only runs when something wakes it, such
 *                as a signal)
 *   eintr        "eintr E spurious S": waits that failed with EINTR, and
 *                waits that returned though nothing woke them
 *   expect WHAT  the busy threads' results must be WHAT from now on: "new",
 *                "old" or "any" (see churn.c): "expect WHAT"
 *   progress     wait until both busy threads made two more calls:
 *                "progress" or "stuck"
 *   busy         "calls C bad B"
 *   park         a thread ("parked") enters manyval(-1) and waits there:
 *                "parked O" in the original, "parked P" in the patch's
 *   release      it returns: "released R"
 *   call N       "R" = manyval(N)
 *   quit         "bye", exit 0 (the waiters are not joined)
 *
 * manyval(x) is 3x + 1; stress/many_fix makes it 3x + 2.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define MAX_WAITERS	   4096
#define WAITER_STACK	   (256 * 1024)
#define SETTLE_TIMEOUT_S   60
#define PROGRESS_TIMEOUT_S 15

int manyval(int x);

static PATCHABLE int park_here(int x, int who);

/*
 * The frame-pointer prologue (push %rbp; mov %rsp,%rbp) keeps the test of
 * x, a branch, out of the first bytes the entry jump displaces.
 */
__attribute__((noipa, optimize("no-omit-frame-pointer", "no-shrink-wrap")))
int manyval(int x)
{
	if (x < 0)
		x = park_here(-x, 'O');
	return x * 3 + 1;
}

enum wait_kind { WAIT_COND, WAIT_FUTEX, WAIT_EPOLL };

struct waiter {
	pthread_t thread;
	enum wait_kind kind;
	_Atomic pid_t tid; /* set just before the thread blocks for good */
	unsigned long switches;
	pthread_mutex_t mutex; /* WAIT_COND: its own, nobody else takes it */
	pthread_cond_t cond;
};

static struct waiter *waiters;
static int nwaiters;
static _Atomic uint32_t futex_word; /* never changes */
static int epfd;
static atomic_ulong eintr, spurious;

static void *waiter_main(void *p)
{
	struct waiter *w = p;
	struct epoll_event ev;

	switch (w->kind) {
	case WAIT_COND:
		pthread_setname_np(pthread_self(), "cwait");
		pthread_mutex_lock(&w->mutex);
		atomic_store(&w->tid, gettid());
		/* Nobody signals the condition: every return is spurious. */
		for (;;) {
			pthread_cond_wait(&w->cond, &w->mutex);
			atomic_fetch_add(&spurious, 1);
		}
	case WAIT_FUTEX:
		pthread_setname_np(pthread_self(), "fwait");
		atomic_store(&w->tid, gettid());
		for (;;) {
			long r = syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, NULL,
					 NULL, 0);

			if (r < 0 && errno == EINTR)
				atomic_fetch_add(&eintr, 1);
			else
				atomic_fetch_add(&spurious, 1);
		}
	case WAIT_EPOLL:
		pthread_setname_np(pthread_self(), "ewait");
		atomic_store(&w->tid, gettid());
		/* epoll_wait() is never restarted after a signal handler ran. */
		for (;;) {
			int r = epoll_wait(epfd, &ev, 1, -1);

			if (r < 0 && errno == EINTR)
				atomic_fetch_add(&eintr, 1);
			else
				atomic_fetch_add(&spurious, 1);
		}
	}
	return NULL;
}

/* "S" state and the system call it sleeps in, from /proc. */
static bool task_asleep_in(pid_t tid, enum wait_kind kind)
{
	char path[64], buf[256];
	FILE *f;
	long nr = -1;
	char state = '?';
	bool ok;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (fgets(buf, sizeof(buf), f)) {
		char *end = strrchr(buf, ')');

		if (end && end[1] == ' ')
			state = end[2];
	}
	fclose(f);
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	f = fopen(path, "r");
	if (!f)
		return false;
	ok = fscanf(f, "%ld", &nr) == 1;
	fclose(f);
	if (!ok || state != 'S')
		return false;
	if (kind == WAIT_EPOLL)
		return nr == SYS_epoll_wait || nr == SYS_epoll_pwait;
	return nr == SYS_futex;
}

/* Voluntary plus involuntary context switches of thread @tid. */
static unsigned long task_switches(pid_t tid)
{
	char path[64], line[128];
	unsigned long total = 0, n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	f = fopen(path, "r");
	if (!f)
		return ULONG_MAX;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "voluntary_ctxt_switches: %lu", &n) == 1 ||
		    sscanf(line, "nonvoluntary_ctxt_switches: %lu", &n) == 1)
			total += n;
	fclose(f);
	return total;
}

/* The busy threads and what their results must be (see churn.c). */
enum expect { EXPECT_ANY, EXPECT_OLD, EXPECT_NEW };

#define NBUSY 2
static pthread_t busy[NBUSY];
static atomic_ulong busy_calls[NBUSY], busy_bad;
static _Atomic int expect;
static atomic_ulong expect_gen;

static void *busy_main(void *p)
{
	long id = (long)p;
	char name[16];

	snprintf(name, sizeof(name), "busy%ld", id);
	pthread_setname_np(pthread_self(), name);
	for (unsigned int i = 0;; i++) {
		int x = (int)(i & 0xffff);
		unsigned long gen = atomic_load(&expect_gen);
		int e = atomic_load(&expect), r = manyval(x);
		const char *why = NULL;

		if (r != 3 * x + 1 && r != 3 * x + 2)
			why = "neither the old nor the new result";
		else if (atomic_load(&expect_gen) != gen)
			why = NULL;
		else if (e == EXPECT_NEW && r != 3 * x + 2)
			why = "the old result after the patch was applied";
		else if (e == EXPECT_OLD && r != 3 * x + 1)
			why = "the new result after the patch was reverted";
		if (why) {
			atomic_fetch_add(&busy_bad, 1);
			fprintf(stderr, "many: busy%ld: manyval(%d) = %d: %s\n", id, x, r, why);
		}
		atomic_fetch_add(&busy_calls[id], 1);
	}
	return NULL;
}

static void do_start(const char *arg)
{
	int n = int_arg(arg), err;
	pthread_attr_t attr;
	struct epoll_event ev = { .events = EPOLLIN };
	struct timespec tick = { 0, 1000000 };
	int efd, settled = 0;

	if (waiters || n < 4 || n > MAX_WAITERS) {
		reply("error start N: once, 4 <= N <= %d", MAX_WAITERS);
		return;
	}
	efd = eventfd(0, EFD_CLOEXEC);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	waiters = calloc((size_t)n, sizeof(*waiters));
	if (efd < 0 || epfd < 0 || !waiters || epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev)) {
		reply("error setup: %s", strerror(errno));
		exit(1);
	}
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, WAITER_STACK);
	for (int i = 0; i < n; i++) {
		struct waiter *w = &waiters[i];

		w->kind = i % 4 == 0 ? WAIT_COND : i % 4 == 1 ? WAIT_FUTEX : WAIT_EPOLL;
		pthread_mutex_init(&w->mutex, NULL);
		pthread_cond_init(&w->cond, NULL);
		err = pthread_create(&w->thread, &attr, waiter_main, w);
		if (err) {
			reply("error limit: pthread_create of thread %d: %s", i + 1,
			      strerror(err));
			exit(1);
		}
		nwaiters++;
	}
	pthread_attr_destroy(&attr);
	for (long i = 0; i < NBUSY; i++)
		if (pthread_create(&busy[i], NULL, busy_main, (void *)i)) {
			reply("error pthread_create");
			exit(1);
		}
	/*
	 * Poll /proc until every waiter sleeps in its final system call (a
	 * bounded wait for a certain state, like the tests' wait_until).
	 */
	for (int ms = 0; ms < SETTLE_TIMEOUT_S * 1000; ms++) {
		while (settled < n && atomic_load(&waiters[settled].tid) &&
		       task_asleep_in(atomic_load(&waiters[settled].tid), waiters[settled].kind))
			settled++;
		if (settled == n)
			break;
		nanosleep(&tick, NULL);
	}
	if (settled < n)
		reply("error waiter %d did not settle", settled);
	else
		reply("started %d", n);
}

static void do_mark(void)
{
	for (int i = 0; i < nwaiters; i++)
		waiters[i].switches = task_switches(waiters[i].tid);
	reply("marked");
}

static void do_woken(void)
{
	int woken = 0;

	for (int i = 0; i < nwaiters; i++)
		if (task_switches(waiters[i].tid) != waiters[i].switches) {
			if (woken++ < 5)
				fprintf(stderr, "many: waiter %d (tid %d) was woken\n", i,
					waiters[i].tid);
		}
	reply("woken %d", woken);
}

static void do_expect(const char *arg)
{
	int e;

	if (strcmp(arg, "new") == 0)
		e = EXPECT_NEW;
	else if (strcmp(arg, "old") == 0)
		e = EXPECT_OLD;
	else if (strcmp(arg, "any") == 0)
		e = EXPECT_ANY;
	else {
		reply("error expect new|old|any");
		return;
	}
	atomic_fetch_add(&expect_gen, 1);
	atomic_store(&expect, e);
	atomic_fetch_add(&expect_gen, 1);
	reply("expect %s", arg);
}

static void do_progress(void)
{
	unsigned long start[NBUSY];
	struct timespec tick = { 0, 1000000 };
	bool done = false;

	for (int i = 0; i < NBUSY; i++)
		start[i] = atomic_load(&busy_calls[i]);
	for (int ms = 0; !done && ms < PROGRESS_TIMEOUT_S * 1000; ms++) {
		done = true;
		for (int i = 0; i < NBUSY; i++)
			if (atomic_load(&busy_calls[i]) < start[i] + 2)
				done = false;
		if (!done)
			nanosleep(&tick, NULL);
	}
	reply(done ? "progress" : "stuck");
}

/* One parked thread at a time: enough to hold a transition open. */
static int park_notify[2], park_release[2];
static pthread_t parked;
static int parked_result;

static PATCHABLE int park_here(int x, int who)
{
	char c = (char)who;

	if (write(park_notify[1], &c, 1) != 1)
		abort();
	while (read(park_release[0], &c, 1) != 1)
		if (errno != EINTR)
			abort();
	return x;
}

static void *park_main(void *unused)
{
	(void)unused;
	pthread_setname_np(pthread_self(), "parked");
	parked_result = manyval(-1);
	return NULL;
}

static void do_park(void)
{
	char c;

	if (pthread_create(&parked, NULL, park_main, NULL))
		abort();
	while (read(park_notify[0], &c, 1) != 1)
		if (errno != EINTR)
			abort();
	reply("parked %c", c);
}

static void do_release(void)
{
	char c = 'r';

	if (write(park_release[1], &c, 1) != 1)
		abort();
	pthread_join(parked, NULL);
	reply("released %d", parked_result);
}

int main(void)
{
	char line[256], *arg;

	if (pipe(park_notify) || pipe(park_release)) {
		perror("many: pipe");
		return 1;
	}
	target_ready();
	while (next_command(line, sizeof(line), &arg)) {
		if (strcmp(line, "start") == 0)
			do_start(arg);
		else if (strcmp(line, "mark") == 0)
			do_mark();
		else if (strcmp(line, "woken") == 0)
			do_woken();
		else if (strcmp(line, "eintr") == 0)
			reply("eintr %lu spurious %lu", atomic_load(&eintr),
			      atomic_load(&spurious));
		else if (strcmp(line, "expect") == 0)
			do_expect(arg);
		else if (strcmp(line, "progress") == 0)
			do_progress();
		else if (strcmp(line, "busy") == 0)
			reply("calls %lu bad %lu",
			      atomic_load(&busy_calls[0]) + atomic_load(&busy_calls[1]),
			      atomic_load(&busy_bad));
		else if (strcmp(line, "park") == 0)
			do_park();
		else if (strcmp(line, "release") == 0)
			do_release();
		else if (strcmp(line, "call") == 0)
			reply("%d", manyval(int_arg(arg)));
		else if (strcmp(line, "quit") == 0)
			break;
		else
			reply("error unknown command %s", line);
	}
	reply("bye");
	/*
	 * exit() would run destructors while a thousand threads still wait
	 * (and the busy ones run): end the process at once, all threads alike.
	 */
	fflush(stdout);
	_exit(0);
}
