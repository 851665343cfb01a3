/* SPDX-License-Identifier: MIT */
/*
 * spawn - a process for timing transitions: idle threads that sleep in
 * the kernel and two busy threads that call the patched function and note
 * how long they were ever kept from running.
 *
 *   start N   N idle threads, alternately in FUTEX_WAIT and epoll_wait(),
 *             and the two busy threads; answers once every idle thread
 *             sleeps in its final system call: "started N"
 *   mark      forget the busy threads' pauses so far: "marked"
 *   gap       "gap G both B": the longest pause of a busy thread since
 *             "mark" and how long the two longest pauses overlapped (both
 *             threads kept from running at once), in microseconds
 *   impl      which bench_work() runs now: "impl old" or "impl new"
 *   quit      "bye"
 *
 * A pause is the time between two consecutive calls of a busy thread: a
 * visit signal, a ptrace stop, or the scheduler giving the CPU to another.
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define MAX_IDLE	 4096
#define IDLE_STACK	 (128 * 1024)
#define SETTLE_TIMEOUT_S 60
#define NBUSY		 2

static volatile int bias = 1;

int bench_work(int x);

PATCHABLE int bench_work(int x)
{
	return x * 3 + bias;
}

struct idle {
	pthread_t thread;
	bool epoll;
	_Atomic pid_t tid;
};

static struct idle *idles;
static int nidle;
static _Atomic uint32_t never; /* the futex word nobody changes */
static int epfd;

static void *idle_main(void *p)
{
	struct idle *w = p;
	struct epoll_event ev;

	atomic_store(&w->tid, gettid());
	for (;;) {
		if (w->epoll)
			epoll_wait(epfd, &ev, 1, -1);
		else
			syscall(SYS_futex, &never, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	}
	return NULL;
}

/* Is the thread asleep ('S') in the system call it waits in for good? */
static bool asleep(const struct idle *w)
{
	char path[64];
	pid_t tid = atomic_load(&w->tid);
	long nr = -1;
	FILE *f;
	bool ok = false;

	if (!tid)
		return false;
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	if ((f = fopen(path, "re"))) {
		char buf[256], *end;

		ok = fgets(buf, sizeof(buf), f) && (end = strrchr(buf, ')')) && end[2] == 'S';
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	if (!ok || !(f = fopen(path, "re")))
		return false;
	ok = fscanf(f, "%ld", &nr) == 1;
	fclose(f);
	return ok && (w->epoll ? nr == SYS_epoll_wait || nr == SYS_epoll_pwait : nr == SYS_futex);
}

struct busy {
	pthread_t thread;
	_Atomic uint64_t gap, gap_end; /* the longest pause since "mark", and when it ended */
} __attribute__((aligned(64)));

static struct busy busy[NBUSY];

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *busy_main(void *p)
{
	struct busy *b = p;
	uint64_t last = now_ns();
	unsigned sink = 0;

	pthread_setname_np(pthread_self(), "busy");
	for (unsigned i = 0;; i++) {
		uint64_t now = now_ns();

		if (now - last > atomic_load_explicit(&b->gap, memory_order_relaxed)) {
			atomic_store(&b->gap_end, now);
			atomic_store(&b->gap, now - last);
		}
		last = now;
		sink += (unsigned)bench_work((int)(i & 0xffff));
	}
	return (void *)(uintptr_t)sink;
}

static void do_start(const char *arg)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct timespec tick = {0, 1000000};
	int n = int_arg(arg), settled = 0, efd;
	pthread_attr_t attr;

	if (idles || n < 1 || n > MAX_IDLE) {
		reply("error start N: once, 1 <= N <= %d", MAX_IDLE);
		return;
	}
	efd = eventfd(0, EFD_CLOEXEC);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	idles = calloc((size_t)n, sizeof(*idles));
	if (efd < 0 || epfd < 0 || !idles || epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev)) {
		reply("error setup: %s", strerror(errno));
		exit(1);
	}
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, IDLE_STACK);
	for (int i = 0; i < n; i++) {
		idles[i].epoll = i % 2;
		if (pthread_create(&idles[i].thread, &attr, idle_main, &idles[i])) {
			reply("error limit: thread %d", i + 1);
			exit(1);
		}
		nidle++;
	}
	pthread_attr_destroy(&attr);
	for (int i = 0; i < NBUSY; i++)
		if (pthread_create(&busy[i].thread, NULL, busy_main, &busy[i]))
			abort();
	/* A bounded wait for a state that is certain to come. */
	for (int ms = 0; settled < n && ms < SETTLE_TIMEOUT_S * 1000; ms++) {
		while (settled < n && asleep(&idles[settled]))
			settled++;
		if (settled < n)
			nanosleep(&tick, NULL);
	}
	if (settled < n)
		reply("error idle thread %d did not settle", settled);
	else
		reply("started %d", n);
}

static void do_mark(void)
{
	for (int i = 0; i < NBUSY; i++)
		atomic_store(&busy[i].gap, 0);
	reply("marked");
}

static void do_gap(void)
{
	uint64_t longest = 0, lo = 0, hi = UINT64_MAX;

	for (int i = 0; i < NBUSY; i++) {
		uint64_t gap = atomic_load(&busy[i].gap), end = atomic_load(&busy[i].gap_end);

		longest = gap > longest ? gap : longest;
		lo = end - gap > lo ? end - gap : lo;
		hi = end < hi ? end : hi;
	}
	reply("gap %.1f both %.1f", (double)longest / 1e3, hi > lo ? (double)(hi - lo) / 1e3 : 0.0);
}

int main(void)
{
	char line[256], *arg;

	target_ready();
	while (next_command(line, sizeof(line), &arg)) {
		if (strcmp(line, "start") == 0)
			do_start(arg);
		else if (strcmp(line, "mark") == 0)
			do_mark();
		else if (strcmp(line, "gap") == 0)
			do_gap();
		else if (strcmp(line, "impl") == 0)
			/* cppcheck-suppress knownConditionTrueFalse ; not once it is patched */
			reply("impl %s", bench_work(0) == 1 ? "old" : "new");
		else if (strcmp(line, "quit") == 0)
			break;
		else
			reply("error unknown command %s", line);
	}
	reply("bye");
	/* The idle threads never return: end the process, all threads alike. */
	fflush(stdout);
	_exit(0);
}
