/* SPDX-License-Identifier: MIT */
/*
 * forker - threads that fork in a loop while transitions start, reverse and
 * complete (tests/e2e/70-fork.sh, patch stress/fork_fix).
 *
 *   storm        start NFORKERS threads ("forker0", "forker1") that fork in
 *                a loop.  Each child calls forked(CHILD_ARG) once, right
 *                after fork, and exits 0 when the result is the original's
 *                or the patch's, 3 otherwise; the thread reaps it, calls
 *                forked() itself and forks again.  "storming"
 *   keep         each forking thread keeps its next child alive instead:
 *                the child calls forked(CHILD_ARG) once, then waits in
 *                read() for "probe" and is killed when its forking thread
 *                (the whole target) dies.  "kept PID PID"
 *   children     the kept children: "PID PID ..." ("" when none)
 *   probe PID    kept child PID calls forked(CHILD_ARG) again: "R"
 *   calm         stop forking (the threads stay, so that their children
 *                do): "forks F kept K bad B", B counting wrong results and
 *                children that did not exit 0
 *   park         a new thread enters forked(-1) and waits there:
 *                "parked O" in the original, "parked P" in the patch's
 *   release      the thread parked last returns: "released R"
 *   call N       "R" = forked(N)
 *   quit         "bye", exit 0 (the kept children die with it)
 *
 * forked(x) is 3x + 1; stress/fork_fix makes it 3x + 2.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define NFORKERS  2
#define MAX_KIDS  256
#define MAX_PARK  4
#define CHILD_ARG 7
/* How long the target waits for a child's answer before calling it lost. */
#define CHILD_TIMEOUT_MS 15000

int forked(int x);

/* Called from forked(x < 0): report @who, wait for "release", return x. */
static PATCHABLE int park_here(int x, int who);

/*
 * The frame-pointer prologue (push %rbp; mov %rsp,%rbp) keeps the test of
 * x, a branch, out of the first bytes the entry jump displaces.
 */
__attribute__((noipa, optimize("no-omit-frame-pointer", "no-shrink-wrap")))
int forked(int x)
{
	if (x < 0)
		x = park_here(-x, 'O');
	return x * 3 + 1;
}

/* Either implementation's result, never anything else. */
static bool valid(int x, int r)
{
	return r == 3 * x + 1 || r == 3 * x + 2;
}

struct kid {
	pid_t pid;
	int cmd_w; /* one byte: call forked() again */
	int rep_r; /* its int results */
};

struct forker {
	pthread_t thread;
	int id;
	bool keep;	/* main asks for the next child to be kept */
	pid_t kept;	/* the kept child, 0 until it is there */
	bool failed;	/* the kept child could not be made */
	bool stopped;	/* out of the fork loop after "calm" */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct forker forkers[NFORKERS];
static struct kid kids[MAX_KIDS];
static int nkids;
static atomic_bool storming;
static atomic_ulong forks, bad;

static void note_bad(const char *what, long v)
{
	atomic_fetch_add(&bad, 1);
	fprintf(stderr, "forker: bad: %s %ld\n", what, v);
}

/* Write all of @len bytes; 0 or -1. */
static int write_all(int fd, const void *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf = (const char *)buf + n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Read exactly one int from a child within CHILD_TIMEOUT_MS: its siblings
 * may hold copies of the pipe's write end, so a dead child does not
 * always mean end of file here.
 */
static int read_int(int fd, int *v)
{
	size_t got = 0;

	while (got < sizeof(*v)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int ready = poll(&p, 1, CHILD_TIMEOUT_MS);

		if (ready < 0 && errno == EINTR)
			continue;
		if (ready <= 0)
			return -1;
		n = read(fd, (char *)v + got, sizeof(*v) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

/*
 * A kept child: only async-signal-safe calls until it is done, as after any
 * fork of a threaded process.  It must not keep the test's fifos open
 * (stdin and stdout), and dies with the thread that forked it, so that no
 * child outlives the test.
 */
static __attribute__((noreturn)) void kept_child(pid_t parent, int cmd_r, int rep_w)
{
	int fd, r;
	char c;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(1);
	fd = open("/dev/null", O_RDWR);
	if (fd < 0 || dup2(fd, 0) < 0 || dup2(fd, 1) < 0)
		_exit(1);
	close(fd);
	/* Dispatched by whatever state this thread inherited. */
	r = forked(CHILD_ARG);
	if (write_all(rep_w, &r, sizeof(r)))
		_exit(1);
	for (;;) {
		ssize_t n = read(cmd_r, &c, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);
		r = forked(CHILD_ARG);
		if (write_all(rep_w, &r, sizeof(r)))
			_exit(1);
	}
}

static int fork_kept(void)
{
	int cmd[2], rep[2], first;
	pid_t parent = getpid(), pid;

	if (pipe(cmd))
		return -1;
	if (pipe(rep)) {
		close(cmd[0]);
		close(cmd[1]);
		return -1;
	}
	pid = fork();
	if (pid == 0)
		kept_child(parent, cmd[0], rep[1]);
	atomic_fetch_add(&forks, 1);
	close(cmd[0]);
	close(rep[1]);
	if (pid < 0 || read_int(rep[0], &first)) {
		if (pid > 0)
			fprintf(stderr, "forker: kept child %d never answered\n", pid);
		close(cmd[1]);
		close(rep[0]);
		return -1;
	}
	if (!valid(CHILD_ARG, first))
		note_bad("kept child's first forked() returned", first);
	pthread_mutex_lock(&lock);
	if (nkids < MAX_KIDS)
		kids[nkids++] = (struct kid){ .pid = pid, .cmd_w = cmd[1], .rep_r = rep[0] };
	else
		pid = -1;
	pthread_mutex_unlock(&lock);
	return pid;
}

/* A child that calls forked() once and exits: its status is the verdict. */
static void fork_short(void)
{
	pid_t pid = fork();
	int status;

	if (pid == 0)
		_exit(valid(CHILD_ARG, forked(CHILD_ARG)) ? 0 : 3);
	if (pid < 0) {
		note_bad("fork failed, errno", errno);
		return;
	}
	atomic_fetch_add(&forks, 1);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			note_bad("waitpid failed, errno", errno);
			return;
		}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		note_bad("short-lived child's wait status", status);
}

static void *forker_main(void *p)
{
	struct forker *f = p;
	char name[16];
	int i = 0;

	snprintf(name, sizeof(name), "forker%d", f->id);
	pthread_setname_np(pthread_self(), name);
	while (atomic_load(&storming)) {
		bool keep;

		pthread_mutex_lock(&lock);
		keep = f->keep;
		pthread_mutex_unlock(&lock);
		if (keep) {
			pid_t pid = fork_kept();

			pthread_mutex_lock(&lock);
			f->keep = false;
			f->kept = pid > 0 ? pid : 0;
			f->failed = pid <= 0;
			pthread_cond_broadcast(&cond);
			pthread_mutex_unlock(&lock);
		} else {
			fork_short();
		}
		/* The forking thread takes the self-switch path too. */
		i = (i + 1) & 0xffff;
		if (!valid(i, forked(i)))
			note_bad("forking thread's forked() for", i);
	}
	/*
	 * Stay: a kept child is killed when the thread that forked it ends
	 * (PR_SET_PDEATHSIG), and the test still has to query them.
	 */
	pthread_mutex_lock(&lock);
	f->stopped = true;
	pthread_cond_broadcast(&cond);
	for (;;)
		pthread_cond_wait(&cond, &lock);
	return NULL;
}

static void do_storm(void)
{
	if (atomic_load(&storming) || forkers[0].thread) {
		reply("error storm already started");
		return;
	}
	atomic_store(&storming, true);
	for (int i = 0; i < NFORKERS; i++) {
		forkers[i].id = i;
		if (pthread_create(&forkers[i].thread, NULL, forker_main, &forkers[i])) {
			reply("error pthread_create");
			exit(1);
		}
	}
	reply("storming");
}

static void do_keep(void)
{
	char out[64] = "kept";
	bool failed = false;

	if (!atomic_load(&storming)) {
		reply("error not storming");
		return;
	}
	pthread_mutex_lock(&lock);
	for (int i = 0; i < NFORKERS; i++) {
		forkers[i].kept = 0;
		forkers[i].failed = false;
		forkers[i].keep = true;
	}
	for (int i = 0; i < NFORKERS; i++) {
		while (forkers[i].keep)
			pthread_cond_wait(&cond, &lock);
		failed |= forkers[i].failed;
		snprintf(out + strlen(out), sizeof(out) - strlen(out), " %d", forkers[i].kept);
	}
	pthread_mutex_unlock(&lock);
	if (failed)
		reply("error a kept child could not be made");
	else
		reply("%s", out);
}

static void do_children(void)
{
	char out[MAX_KIDS * 12] = "";

	pthread_mutex_lock(&lock);
	for (int i = 0; i < nkids; i++)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%d", i ? " " : "",
			 kids[i].pid);
	pthread_mutex_unlock(&lock);
	reply("%s", out);
}

static void do_probe(const char *arg)
{
	pid_t pid = int_arg(arg);
	struct kid *k = NULL;
	char c = 'p';
	int r;

	pthread_mutex_lock(&lock);
	for (int i = 0; i < nkids; i++)
		if (kids[i].pid == pid)
			k = &kids[i];
	pthread_mutex_unlock(&lock);
	if (!k)
		reply("error %d is not a kept child", pid);
	else if (write_all(k->cmd_w, &c, 1) || read_int(k->rep_r, &r))
		reply("error child %d did not answer", pid);
	else
		reply("%d", r);
}

/* Stop forking; wait until no thread is in its fork loop any more. */
static void stop_storm(void)
{
	atomic_store(&storming, false);
	pthread_mutex_lock(&lock);
	for (int i = 0; i < NFORKERS; i++)
		while (forkers[i].thread && !forkers[i].stopped)
			pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
}

static void do_calm(void)
{
	stop_storm();
	reply("forks %lu kept %d bad %lu", atomic_load(&forks), nkids, atomic_load(&bad));
}

/* Parked threads, each with its own release pipe so "release" picks one. */
static struct {
	pthread_t thread;
	int release[2];
	int result;
} parked[MAX_PARK];
static int nparked;
static int park_notify[2];
static __thread int my_release_fd;

static PATCHABLE int park_here(int x, int who)
{
	char c = (char)who;

	if (write_all(park_notify[1], &c, 1))
		abort();
	while (read(my_release_fd, &c, 1) != 1)
		if (errno != EINTR)
			abort();
	return x;
}

static void *park_main(void *p)
{
	int *slot = p;

	pthread_setname_np(pthread_self(), "parked");
	my_release_fd = parked[*slot].release[0];
	parked[*slot].result = forked(-1);
	return NULL;
}

static void do_park(void)
{
	static int slots[MAX_PARK];
	int n = nparked;
	char c;

	if (n == MAX_PARK) {
		reply("error too many parked threads");
		return;
	}
	slots[n] = n;
	if (pipe(parked[n].release) ||
	    pthread_create(&parked[n].thread, NULL, park_main, &slots[n])) {
		reply("error cannot park");
		exit(1);
	}
	nparked++;
	while (read(park_notify[0], &c, 1) != 1)
		if (errno != EINTR)
			abort();
	reply("parked %c", c);
}

static void do_release(void)
{
	char c = 'r';
	int n;

	if (!nparked) {
		reply("error nothing parked");
		return;
	}
	n = --nparked;
	if (write_all(parked[n].release[1], &c, 1))
		abort();
	pthread_join(parked[n].thread, NULL);
	close(parked[n].release[0]);
	close(parked[n].release[1]);
	reply("released %d", parked[n].result);
}

int main(void)
{
	char line[256], *arg;

	if (pipe(park_notify)) {
		perror("pipe");
		return 1;
	}
	target_ready();
	while (next_command(line, sizeof(line), &arg)) {
		if (strcmp(line, "storm") == 0)
			do_storm();
		else if (strcmp(line, "keep") == 0)
			do_keep();
		else if (strcmp(line, "children") == 0)
			do_children();
		else if (strcmp(line, "probe") == 0)
			do_probe(arg);
		else if (strcmp(line, "calm") == 0)
			do_calm();
		else if (strcmp(line, "park") == 0)
			do_park();
		else if (strcmp(line, "release") == 0)
			do_release();
		else if (strcmp(line, "call") == 0)
			reply("%d", forked(int_arg(arg)));
		else if (strcmp(line, "quit") == 0)
			break;
		else
			reply("error unknown command %s", line);
	}
	stop_storm();
	/*
	 * The forking threads wait forever: the exit ends them, and with them
	 * the kept children.
	 */
	reply("bye");
	return 0;
}
