// SPDX-License-Identifier: MIT
/*
 * The agent: one thread serving the process's control socket and driving
 * transitions (kernel: the sysfs handlers and klp_transition_work).  It
 * sleeps in poll() with no timeout while there is nothing to do, so an idle
 * runtime costs no CPU.  Timers run only while there is work: a transition
 * to retry (backing off from 1 ms, kernel-like once it drags on) or a
 * disabled patch waiting to be unloaded.  A thread that switches itself
 * kicks the agent through an eventfd, so the last switch completes the
 * transition at once.
 *
 * Requests are answered one at a time and quickly.  `apply` and `revert`
 * that must wait for their transition leave their connection with the
 * agent as a waiter: it gets progress messages and, when the transition
 * ends, the result.  A waiter that hangs up is dropped; the transition goes
 * on without it.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "protocol/protocol.h"
#include "runtime.h"

#define REAP_INTERVAL_MS  20
#define RETRY_FIRST_MS	  1
#define RETRY_MAX_MS	  250
#define REQUEST_TIMEOUT_S 5
#define MAX_WAITERS	  64

enum { FD_LISTEN, FD_RETRY, FD_REAP, FD_KICK, FD_WAITERS };

struct waiter {
	int sock;
	bool apply; /* else revert */
	char name[LP_NAME_MAX];
	char done_msg[LP_ERR_MAX]; /* the success message */
	size_t last_total, last_pending;
};

static int listen_fd = -1, retry_fd = -1, reap_fd = -1, kick_fd = -1;
static struct waiter waiters[MAX_WAITERS];
static size_t nwaiters;
static long retry_ms;

static void arm(int fd, long ms, bool repeat)
{
	struct itimerspec its = {0};

	its.it_value.tv_sec = ms / 1000;
	its.it_value.tv_nsec = (ms % 1000) * 1000000L;
	if (repeat)
		its.it_interval = its.it_value;
	timerfd_settime(fd, 0, &its, NULL);
}

/* Async-signal-safe: called by a thread that switched itself. */
void lp_agent_kick(void)
{
	uint64_t one = 1;

	if (kick_fd >= 0 && write(kick_fd, &one, sizeof(one)) < 0)
		return; /* the counter is full: the agent has plenty to read */
}

/* Root, or the user the process runs as. */
static bool peer_allowed(int sock, char *err, size_t errlen)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		snprintf(err, errlen, "cannot identify the caller: %s", strerror(errno));
		return false;
	}
	if (cred.uid == 0 || cred.uid == geteuid())
		return true;
	snprintf(err, errlen,
		 "permission denied: uid %u is neither root nor the owner of "
		 "process %d (uid %u)",
		 cred.uid, (int)getpid(), geteuid());
	return false;
}

static void reply(int sock, int code, const char *text)
{
	lp_proto_send(sock, LP_MSG_RESULT, code, text, strlen(text), -1);
}

/* Keep @sock until the transition of patch @name ends; true when it was kept. */
static bool add_waiter(int sock, bool apply, const char *name, const char *done_msg)
{
	struct waiter *w;

	if (nwaiters == MAX_WAITERS)
		return false;
	w = &waiters[nwaiters++];
	*w = (struct waiter){.sock = sock, .apply = apply};
	snprintf(w->name, sizeof(w->name), "%s", name);
	snprintf(w->done_msg, sizeof(w->done_msg), "%s", done_msg);
	return true;
}

static void drop_waiter(size_t i)
{
	close(waiters[i].sock);
	waiters[i] = waiters[--nwaiters];
}

/* The final answer to one waiter, by how the transition ended. */
static void answer_waiter(const struct waiter *w, const struct lp_transition_end *end)
{
	const char *forced = end->forced ? "; transition forced" : "";
	char msg[2 * LP_ERR_MAX];

	if (w->apply && end->target == LP_TASK_UNPATCHED) {
		snprintf(msg, sizeof(msg), "patch '%s' not enabled: its transition was reversed",
			 w->name);
		reply(w->sock, ECANCELED, msg);
		return;
	}
	if (w->apply && end->failure[0]) {
		snprintf(msg, sizeof(msg),
			 "patch '%s' enabled, but a library that loaded meanwhile "
			 "is not patched: %s",
			 w->name, end->failure);
		reply(w->sock, EIO, msg);
		return;
	}
	snprintf(msg, sizeof(msg), "%s%s", w->done_msg, forced);
	reply(w->sock, 0, msg);
}

static void transition_ended(const struct lp_transition_end *end)
{
	for (size_t i = nwaiters; i-- > 0;) {
		if (strcmp(waiters[i].name, end->name) != 0)
			continue;
		answer_waiter(&waiters[i], end);
		drop_waiter(i);
	}
	arm(retry_fd, 0, false);
	if (end->target == LP_TASK_UNPATCHED)
		lp_reap_retired();
}

static void send_progress(void)
{
	char name[LP_NAME_MAX], msg[LP_ERR_MAX];
	size_t total, pending;
	int target;

	if (!nwaiters || !lp_transition_info(name, sizeof(name), &target))
		return;
	lp_lock();
	lp_transition_counts(&total, &pending);
	lp_unlock();
	snprintf(msg, sizeof(msg), "'%s': %s: %zu of %zu threads switched", name,
		 target == LP_TASK_PATCHED ? "patching" : "unpatching", total - pending, total);
	for (size_t i = 0; i < nwaiters; i++) {
		struct waiter *w = &waiters[i];

		if (w->last_total == total && w->last_pending == pending)
			continue;
		w->last_total = total;
		w->last_pending = pending;
		lp_proto_send(w->sock, LP_MSG_PROGRESS, 0, msg, strlen(msg), -1);
	}
}

/* One more try; on failure the next one comes later and later, up to RETRY_MAX_MS. */
static void transition_work(bool signal_all)
{
	struct lp_transition_end end;

	lp_tasks_prune();
	if (lp_transition_work(signal_all, &end)) {
		retry_ms = 0;
		transition_ended(&end);
		return;
	}
	if (!lp_transition_info(end.name, sizeof(end.name), &end.target))
		return;
	send_progress();
	retry_ms = retry_ms ? retry_ms * 2 : RETRY_FIRST_MS;
	if (retry_ms > RETRY_MAX_MS)
		retry_ms = RETRY_MAX_MS;
	arm(retry_fd, retry_ms, false);
}

/* After a change: answer now, or keep the connection until the transition ends. */
static bool finish_change(int sock, int ret, bool waiting, bool nowait, bool apply,
			  const char *name, const char *msg)
{
	if (ret < 0) {
		reply(sock, -ret, msg);
		return false;
	}
	if (!waiting) {
		/* It ended within the request: others may wait for it (a reversed apply). */
		struct lp_transition_end end = {.target =
						    apply ? LP_TASK_PATCHED : LP_TASK_UNPATCHED};

		snprintf(end.name, sizeof(end.name), "%s", name);
		transition_ended(&end);
		reply(sock, 0, msg);
		return false;
	}
	retry_ms = 0;
	arm(retry_fd, RETRY_FIRST_MS, false);
	if (nowait || !add_waiter(sock, apply, name, msg)) {
		char text[LP_ERR_MAX + 32];

		snprintf(text, sizeof(text), "%s; transition in progress", msg);
		reply(sock, 0, text);
		return false;
	}
	send_progress();
	return true;
}

static bool has_word(const char **words, int n, const char *word)
{
	for (int i = 2; i < n; i++)
		if (strcmp(words[i], word) == 0)
			return true;
	return false;
}

static bool handle_apply(int sock, struct lp_msg *msg, const char **words, int n)
{
	char err[LP_ERR_MAX] = "", name[LP_NAME_MAX] = "";
	bool waiting = false;
	int ret, fd = msg->fd;

	if (n < 2 || fd < 0) {
		reply(sock, EINVAL, "apply needs a patch path and its file descriptor");
		return false;
	}
	msg->fd = -1; /* lp_apply_patch owns it now */
	ret = lp_apply_patch(fd, words[1], name, &waiting, err, sizeof(err));
	return finish_change(sock, ret, waiting, has_word(words, n, "nowait"), true, name, err);
}

static bool handle_revert(int sock, const char **words, int n)
{
	char err[LP_ERR_MAX] = "";
	bool waiting = false;
	int ret;

	if (n < 2) {
		reply(sock, EINVAL, "revert needs a patch name");
		return false;
	}
	ret = lp_revert_patch(words[1], &waiting, err, sizeof(err));
	return finish_change(sock, ret, waiting, has_word(words, n, "nowait"), false, words[1],
			     err);
}

static void handle_text(int sock, char *text)
{
	if (!text) {
		reply(sock, ENOMEM, "out of memory");
		return;
	}
	reply(sock, 0, text);
	free(text);
}

static void handle_force(int sock)
{
	char msg[LP_ERR_MAX];
	int ret = lp_force(msg, sizeof(msg));

	if (ret == 0)
		transition_work(false);
	reply(sock, -ret, msg);
}

/*
 * Kernel: klp_send_signals().  Threads blocked in the kernel get the visit
 * signal too, for their full registers, except those whose wait a signal
 * would end with EINTR.
 */
static void handle_signal(int sock)
{
	char name[LP_NAME_MAX], msg[LP_ERR_MAX];
	size_t n;
	int target;

	if (!lp_transition_info(name, sizeof(name), &target)) {
		reply(sock, EINVAL, "no patch is in transition");
		return;
	}
	transition_work(true);
	n = lp_check_signalled();
	snprintf(msg, sizeof(msg), "'%s': signalled %zu thread%s", name, n, n == 1 ? "" : "s");
	reply(sock, 0, msg);
}

/* "adopt": threads of an injected runtime's process, read by the injector. */
static void handle_adopt(int sock, const char **words, int n)
{
	char msg[LP_ERR_MAX], *records;
	int ret;

	if (n < 2 || !(records = strdup(words[1]))) {
		reply(sock, EINVAL, "adopt needs the threads' records");
		return;
	}
	ret = lp_injected_adopt(records, msg, sizeof(msg));
	free(records);
	reply(sock, -ret, msg);
}

/* Returns true when @sock was kept as a waiter. */
static bool dispatch(int sock, struct lp_msg *msg)
{
	const char *words[LP_PROTO_MAX_ARGS];
	int n = lp_proto_words(msg, words, LP_PROTO_MAX_ARGS);
	size_t len;

	/* Threads registered after the fact leave without a word. */
	lp_tasks_prune();
	if (msg->type != LP_MSG_REQUEST || n < 1)
		reply(sock, EPROTO, "malformed request");
	else if (strcmp(words[0], "apply") == 0)
		return handle_apply(sock, msg, words, n);
	else if (strcmp(words[0], "revert") == 0)
		return handle_revert(sock, words, n);
	else if (strcmp(words[0], "status") == 0)
		handle_text(sock, lp_status_json(n > 1 && strcmp(words[1], "threads") == 0));
	else if (strcmp(words[0], "log") == 0)
		handle_text(sock, lp_log_dump(&len));
	else if (strcmp(words[0], "force") == 0)
		handle_force(sock);
	else if (strcmp(words[0], "signal") == 0)
		handle_signal(sock);
	else if (strcmp(words[0], "runtime") == 0)
		handle_text(sock, lp_injected_info());
	else if (strcmp(words[0], "adopt") == 0)
		handle_adopt(sock, words, n);
	else
		reply(sock, EINVAL, "unknown request");
	return false;
}

/* Returns true when @sock was kept as a waiter. */
static bool serve(int sock)
{
	struct timeval tv = {.tv_sec = REQUEST_TIMEOUT_S};
	int sndbuf = 2 * LP_PROTO_MAX_PAYLOAD + 4096;
	char err[LP_ERR_MAX];
	struct lp_msg msg;
	bool kept = false;

	/* A client that connects and says nothing must not hold the agent. */
	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/* Room for the largest answer: a packet must fit the send buffer whole. */
	setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	/* Read the request even from a caller we refuse: closing a socket with
	 * unread data resets it, and the caller would never see why. */
	if (lp_proto_recv(sock, &msg) < 0)
		return false;
	if (peer_allowed(sock, err, sizeof(err)))
		kept = dispatch(sock, &msg);
	else
		reply(sock, EACCES, err);
	lp_msg_release(&msg);
	return kept;
}

static void drain(int fd)
{
	uint64_t n;

	if (read(fd, &n, sizeof(n)) < 0)
		return; /* nothing to read after all */
}

/* A waiter whose client went away (or wrote, which it must not) is dropped. */
static void check_waiters(const struct pollfd *fds)
{
	for (size_t i = nwaiters; i-- > 0;)
		if (fds[FD_WAITERS + i].revents)
			drop_waiter(i);
}

static void accept_one(void)
{
	int sock = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (sock >= 0 && !serve(sock))
		close(sock);
}

static void *agent_main(void *arg)
{
	struct pollfd fds[FD_WAITERS + MAX_WAITERS];
	char name[LP_NAME_MAX];
	int target;

	(void)arg;
	lp_task_attach_self();
	lp_tls_touch_all();
	lp_injected_setup();
	/* A forked child continues its parent's transition. */
	if (lp_transition_info(name, sizeof(name), &target))
		arm(retry_fd, RETRY_FIRST_MS, false);
	for (;;) {
		size_t nw = nwaiters;

		fds[FD_LISTEN] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
		fds[FD_RETRY] = (struct pollfd){.fd = retry_fd, .events = POLLIN};
		fds[FD_REAP] = (struct pollfd){.fd = reap_fd, .events = POLLIN};
		fds[FD_KICK] = (struct pollfd){.fd = kick_fd, .events = POLLIN};
		for (size_t i = 0; i < nw; i++)
			fds[FD_WAITERS + i] =
			    (struct pollfd){.fd = waiters[i].sock, .events = POLLIN};
		if (poll(fds, FD_WAITERS + nw, -1) < 0)
			continue;
		check_waiters(fds);
		if (fds[FD_KICK].revents & POLLIN) {
			drain(kick_fd);
			/* Start the backoff afresh: threads are moving. */
			retry_ms = 0;
			arm(retry_fd, RETRY_FIRST_MS, false);
		}
		if (fds[FD_RETRY].revents & POLLIN) {
			drain(retry_fd);
			transition_work(false);
		}
		if (fds[FD_REAP].revents & POLLIN) {
			drain(reap_fd);
			lp_reap_retired();
		}
		if (fds[FD_LISTEN].revents & POLLIN)
			accept_one();
		arm(reap_fd, lp_have_retired() ? REAP_INTERVAL_MS : 0, true);
	}
	return NULL;
}

static int open_fds(void)
{
	struct sockaddr_un addr;
	socklen_t len = lp_proto_address(getpid(), &addr);

	listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	retry_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	reap_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (listen_fd < 0 || retry_fd < 0 || reap_fd < 0 || kick_fd < 0 ||
	    bind(listen_fd, (struct sockaddr *)&addr, len) < 0 || listen(listen_fd, 16) < 0)
		return -1;
	return 0;
}

/*
 * Bind the socket before returning, so that a process started with
 * `lpatch run` can be patched as soon as its main() runs.
 */
int lp_agent_start(void)
{
	sigset_t all, old;
	pthread_t thread;
	int ret;

	if (open_fds() < 0)
		return -1;
	/* Signals meant for the application must not land on the agent;
	 * faults and traps stay deliverable (an int3 may be in its path). */
	sigfillset(&all);
	sigdelset(&all, SIGTRAP);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGFPE);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&thread, NULL, agent_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret != 0)
		return -1;
	pthread_setname_np(thread, "lpatch-agent");
	pthread_detach(thread);
	return 0;
}

static void close_fd(int *fd)
{
	close(*fd);
	*fd = -1;
}

/* In a forked child: the parent's agent thread, socket and clients are not ours. */
void lp_agent_atfork_child(void)
{
	close_fd(&listen_fd);
	close_fd(&retry_fd);
	close_fd(&reap_fd);
	close_fd(&kick_fd);
	while (nwaiters)
		drop_waiter(nwaiters - 1);
	retry_ms = 0;
}
