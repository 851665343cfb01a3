/* SPDX-License-Identifier: MIT */
/*
 * blocker - threads blocked in system calls while the runtime is injected
 * (tests/e2e/82-inject-blocked.sh, 84-inject-exit.sh, 85-inject-fork.sh;
 * patch blocker_fix).  The main thread waits for commands in ppoll() with
 * a signal mask, where the injector never borrows a thread (the kernel
 * would put that mask back), so the thread it borrows is one of these:
 *
 *   start read       a thread blocked in read() on a pipe
 *   start accept     ... in accept() on a UNIX socket
 *   start epoll      ... in epoll_wait() (no timeout) on a pipe
 *   start sleep S    ... in nanosleep() for S seconds
 *                    each replies "started KIND TID" once the thread is
 *                    blocked in its system call
 *   feed KIND        make the read, accept or epoll_wait complete: write
 *                    "hello" into the pipe, connect, write into the pipe.
 *                    "fed KIND"
 *   busy KIND        "busy KIND yes" while the thread is in its call, else no
 *   result KIND      wait for the thread (60 s at most) and say how its
 *                    call ended: "read ok hello", "accept ok", "epoll ok 1",
 *                    "sleep ok" (returned 0 after S seconds or more), or
 *                    "KIND failed ERRNO", "sleep short SECONDS"
 *   call N           "R" = blockval(N)
 *   stats            "eintr N": how often ppoll() failed with EINTR
 *   fork             a child returns blockval(5) as its exit status: "child R"
 *   forkexec         a child executes this program again, which says
 *                    whether the runtime is mapped and what blockval(5) is:
 *                    "exec clean 16 status 0"
 *   holdloader LIB   a thread dlopen()s LIB (libhold.so), whose constructor
 *                    keeps it inside the dynamic loader for good: "held"
 *   exit             "exiting", then _exit(0) at once
 *   quit             "bye", exit 0
 *
 * blockval(x) is 3x + 1; blocker_fix makes it 3x + 2.
 */
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define RESULT_TIMEOUT_S 60
#define BLOCK_TIMEOUT_S	 30

int blockval(int x);

PATCHABLE int blockval(int x)
{
	return x * 3 + 1;
}

enum kind { K_READ, K_ACCEPT, K_EPOLL, K_SLEEP, K_KINDS };

static const char *const kind_names[K_KINDS] = { "read", "accept", "epoll", "sleep" };
static const long kind_nr[K_KINDS] = { SYS_read, SYS_accept, SYS_epoll_wait, SYS_clock_nanosleep };

struct worker {
	pthread_t thread;
	_Atomic pid_t tid;
	atomic_bool started, done;
	long ret;
	int err;
	char data[32];
	double seconds, slept;
};

static struct worker workers[K_KINDS];
static int read_pipe[2] = { -1, -1 }, epoll_pipe[2] = { -1, -1 };
static int listen_fd = -1, epoll_fd = -1;
static struct sockaddr_un addr;
static socklen_t addr_len;
static unsigned long eintr;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *work(void *arg)
{
	enum kind k = (enum kind)(long)arg;
	struct worker *w = &workers[k];
	struct epoll_event ev;
	struct timespec req;
	double t0;
	int fd;

	w->tid = (pid_t)syscall(SYS_gettid);
	atomic_store(&w->started, true);
	switch (k) {
	case K_READ:
		w->ret = read(read_pipe[0], w->data, sizeof(w->data) - 1);
		break;
	case K_ACCEPT:
		fd = accept(listen_fd, NULL, NULL);
		w->ret = fd;
		if (fd >= 0) {
			w->ret = read(fd, w->data, sizeof(w->data) - 1) > 0 ? 0 : -1;
			close(fd);
		}
		break;
	case K_EPOLL:
		w->ret = epoll_wait(epoll_fd, &ev, 1, -1);
		break;
	case K_SLEEP:
		req.tv_sec = (time_t)w->seconds;
		req.tv_nsec = (long)((w->seconds - (double)req.tv_sec) * 1e9);
		t0 = now_s();
		w->ret = nanosleep(&req, NULL);
		w->slept = now_s() - t0;
		break;
	default:
		break;
	}
	w->err = w->ret < 0 ? errno : 0;
	atomic_store(&w->done, true);
	return NULL;
}

static int kind_of(const char *name)
{
	for (int k = 0; k < K_KINDS; k++)
		if (strncmp(name, kind_names[k], strlen(kind_names[k])) == 0)
			return k;
	return -1;
}

/* The system call thread @tid is blocked in, or -1. */
static long blocked_in(pid_t tid)
{
	char path[64], buf[256];
	FILE *f;
	long nr = -1;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	f = fopen(path, "re");
	if (f && fgets(buf, sizeof(buf), f) && strncmp(buf, "running", 7) != 0)
		nr = strtol(buf, NULL, 10);
	if (f)
		fclose(f);
	return nr;
}

static void setup(enum kind k)
{
	struct epoll_event ev = { .events = EPOLLIN };

	switch (k) {
	case K_READ:
		if (pipe(read_pipe) < 0)
			abort();
		break;
	case K_ACCEPT:
		addr.sun_family = AF_UNIX;
		snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1, "lpatch-test-blocker-%d",
			 (int)getpid());
		addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
				       strlen(addr.sun_path + 1));
		listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&addr, addr_len) < 0 ||
		    listen(listen_fd, 4) < 0)
			abort();
		break;
	case K_EPOLL:
		epoll_fd = epoll_create1(EPOLL_CLOEXEC);
		if (epoll_fd < 0 || pipe(epoll_pipe) < 0)
			abort();
		ev.data.fd = epoll_pipe[0];
		if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, epoll_pipe[0], &ev) < 0)
			abort();
		break;
	default:
		break;
	}
}

static void do_start(const char *arg)
{
	int k = kind_of(arg);
	struct worker *w;
	double t0 = now_s();

	if (k < 0 || workers[k].started) {
		reply("error bad start '%s'", arg);
		return;
	}
	w = &workers[k];
	if (k == K_SLEEP)
		w->seconds = atof(arg + strlen("sleep"));
	setup((enum kind)k);
	if (pthread_create(&w->thread, NULL, work, (void *)(long)k) != 0)
		abort();
	while (!w->started || blocked_in(w->tid) != kind_nr[k]) {
		if (now_s() - t0 > BLOCK_TIMEOUT_S) {
			reply("error %s never blocked", kind_names[k]);
			return;
		}
		usleep(1000);
	}
	reply("started %s %d", kind_names[k], (int)w->tid);
}

static void do_feed(const char *arg)
{
	int k = kind_of(arg), fd;

	switch (k) {
	case K_READ:
		if (write(read_pipe[1], "hello", 5) != 5)
			abort();
		break;
	case K_ACCEPT:
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&addr, addr_len) < 0 ||
		    write(fd, "x", 1) != 1)
			abort();
		close(fd);
		break;
	case K_EPOLL:
		if (write(epoll_pipe[1], "e", 1) != 1)
			abort();
		break;
	default:
		reply("error bad feed '%s'", arg);
		return;
	}
	reply("fed %s", kind_names[k]);
}

static void do_result(const char *arg)
{
	int k = kind_of(arg);
	struct worker *w;
	double t0 = now_s();

	if (k < 0 || !workers[k].started) {
		reply("error bad result '%s'", arg);
		return;
	}
	w = &workers[k];
	while (!w->done && now_s() - t0 < RESULT_TIMEOUT_S)
		usleep(1000);
	if (!w->done)
		reply("%s still blocked", kind_names[k]);
	else if (w->ret < 0)
		reply("%s failed %s", kind_names[k], strerror(w->err));
	else if (k == K_READ)
		reply("read ok %s", w->data);
	else if (k == K_EPOLL)
		reply("epoll ok %ld", w->ret);
	else if (k == K_SLEEP && w->slept < w->seconds)
		reply("sleep short %.3f", w->slept);
	else
		reply("%s ok", kind_names[k]);
	pthread_join(w->thread, NULL);
}

static void do_busy(const char *arg)
{
	int k = kind_of(arg);

	if (k < 0 || !workers[k].started)
		reply("error bad busy '%s'", arg);
	else
		reply("busy %s %s", kind_names[k], workers[k].done ? "no" : "yes");
}

static void do_fork(void)
{
	int status;
	pid_t child = fork();

	if (child == 0)
		_exit(blockval(5) & 0xff);
	if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status))
		reply("error fork");
	else
		reply("child %d", WEXITSTATUS(status));
}

/* The program again, in a child: "clean" or "runtime", and blockval(5). */
static void do_forkexec(void)
{
	char line[128] = "", exe[4096];
	int out[2], status;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	pid_t child;

	if (n < 0 || pipe(out) < 0)
		abort();
	exe[n] = '\0';
	child = fork();
	if (child == 0) {
		dup2(out[1], STDOUT_FILENO);
		execl(exe, exe, "--exec-child", (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	n = read(out[0], line, sizeof(line) - 1);
	close(out[0]);
	line[n > 0 ? n : 0] = '\0';
	line[strcspn(line, "\n")] = '\0';
	if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status))
		reply("error forkexec");
	else
		reply("exec %s status %d", line, WEXITSTATUS(status));
}

static int exec_child(void)
{
	char line[512];
	bool runtime = false;
	FILE *maps = fopen("/proc/self/maps", "re");

	while (maps && fgets(line, sizeof(line), maps))
		runtime |= strstr(line, "liblpatch.so") != NULL;
	if (maps)
		fclose(maps);
	printf("%s %d\n", runtime ? "runtime" : "clean", blockval(5));
	return 0;
}

static void *hold_loader(void *lib)
{
	if (!dlopen(lib, RTLD_NOW))
		fprintf(stderr, "blocker: %s\n", dlerror());
	return NULL;
}

/* libhold.so's constructor says "held" through one pipe and waits on another. */
static void do_holdloader(const char *lib)
{
	static int held[2], hold[2];
	static char path[4096];
	char buf[16], c;
	pthread_t thread;

	snprintf(path, sizeof(path), "%s", lib);
	if (pipe(held) < 0 || pipe(hold) < 0)
		abort();
	snprintf(buf, sizeof(buf), "%d", held[1]);
	setenv("BLOCKER_HELD_FD", buf, 1);
	snprintf(buf, sizeof(buf), "%d", hold[0]);
	setenv("BLOCKER_HOLD_FD", buf, 1);
	if (pthread_create(&thread, NULL, hold_loader, path) != 0 || read(held[0], &c, 1) != 1)
		abort();
	reply("held");
}

static void dispatch(char *line)
{
	char *arg = strchr(line, ' ');

	if (arg)
		*arg++ = '\0';
	else
		arg = line + strlen(line);
	if (strcmp(line, "start") == 0)
		do_start(arg);
	else if (strcmp(line, "feed") == 0)
		do_feed(arg);
	else if (strcmp(line, "result") == 0)
		do_result(arg);
	else if (strcmp(line, "busy") == 0)
		do_busy(arg);
	else if (strcmp(line, "call") == 0)
		reply("%d", blockval(int_arg(arg)));
	else if (strcmp(line, "stats") == 0)
		reply("eintr %lu", eintr);
	else if (strcmp(line, "fork") == 0)
		do_fork();
	else if (strcmp(line, "forkexec") == 0)
		do_forkexec();
	else if (strcmp(line, "holdloader") == 0)
		do_holdloader(arg);
	else if (strcmp(line, "exit") == 0) {
		reply("exiting");
		_exit(0);
	} else
		reply("error unknown command '%s'", line);
}

/* Commands, read with read() after ppoll() with a signal mask says there is one. */
int main(int argc, char **argv)
{
	char buf[4096];
	size_t have = 0;
	sigset_t mask;

	if (argc > 1 && strcmp(argv[1], "--exec-child") == 0)
		return exec_child();
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR2);
	target_ready();
	for (;;) {
		struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
		char *nl;
		ssize_t n;

		if (ppoll(&pfd, 1, NULL, &mask) < 0) {
			if (errno != EINTR)
				return 2;
			eintr++;
			continue;
		}
		n = read(STDIN_FILENO, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			return 0;
		have += (size_t)n;
		buf[have] = '\0';
		while ((nl = strchr(buf, '\n'))) {
			*nl = '\0';
			if (strcmp(buf, "quit") == 0) {
				reply("bye");
				return 0;
			}
			dispatch(buf);
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have + 1);
		}
	}
}
