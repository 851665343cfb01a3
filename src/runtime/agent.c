// SPDX-License-Identifier: MIT
/*
 * The agent: one thread serving the process's control socket.  It sleeps in
 * poll() with no timeout while there is nothing to do, so an idle runtime
 * costs no CPU; a timer runs only while a disabled patch waits to be
 * unloaded.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "protocol/protocol.h"
#include "runtime.h"

#define REAP_INTERVAL_MS  20
#define REQUEST_TIMEOUT_S 5

static int listen_fd = -1;
static int timer_fd = -1;

static void arm_reaper(bool on)
{
	struct itimerspec its = {0};

	if (on) {
		its.it_value.tv_nsec = REAP_INTERVAL_MS * 1000000L;
		its.it_interval = its.it_value;
	}
	timerfd_settime(timer_fd, 0, &its, NULL);
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

static void handle_apply(int sock, struct lp_msg *msg, const char **words, int n)
{
	char err[LP_ERR_MAX] = "";
	int ret, fd = msg->fd;

	if (n < 2 || fd < 0) {
		reply(sock, EINVAL, "apply needs a patch path and its file descriptor");
		return;
	}
	msg->fd = -1; /* lp_apply_patch owns it now */
	ret = lp_apply_patch(fd, words[1], err, sizeof(err));
	reply(sock, ret < 0 ? -ret : 0, err);
}

static void handle_revert(int sock, const char **words, int n)
{
	char err[LP_ERR_MAX] = "";
	int ret;

	if (n < 2) {
		reply(sock, EINVAL, "revert needs a patch name");
		return;
	}
	ret = lp_revert_patch(words[1], err, sizeof(err));
	reply(sock, ret < 0 ? -ret : 0, err);
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
	bool busy;

	pthread_mutex_lock(&lp_mutex);
	busy = lp_transition_patch != NULL;
	pthread_mutex_unlock(&lp_mutex);
	/* Transitions complete within their request: there is never one to force. */
	reply(sock, busy ? EAGAIN : EINVAL,
	      busy ? "transition completing, try again" : "no patch is in transition");
}

static void dispatch(int sock, struct lp_msg *msg)
{
	const char *words[LP_PROTO_MAX_ARGS];
	int n = lp_proto_words(msg, words, LP_PROTO_MAX_ARGS);
	size_t len;

	if (msg->type != LP_MSG_REQUEST || n < 1)
		reply(sock, EPROTO, "malformed request");
	else if (strcmp(words[0], "apply") == 0)
		handle_apply(sock, msg, words, n);
	else if (strcmp(words[0], "revert") == 0)
		handle_revert(sock, words, n);
	else if (strcmp(words[0], "status") == 0)
		handle_text(sock, lp_status_json(n > 1 && strcmp(words[1], "threads") == 0));
	else if (strcmp(words[0], "log") == 0)
		handle_text(sock, lp_log_dump(&len));
	else if (strcmp(words[0], "force") == 0)
		handle_force(sock);
	else
		reply(sock, EINVAL, "unknown request");
}

static void serve(int sock)
{
	struct timeval tv = {.tv_sec = REQUEST_TIMEOUT_S};
	int sndbuf = 2 * LP_PROTO_MAX_PAYLOAD + 4096;
	char err[LP_ERR_MAX];
	struct lp_msg msg;

	/* A client that connects and says nothing must not hold the agent. */
	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/* Room for the largest answer: a packet must fit the send buffer whole. */
	setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	/* Read the request even from a caller we refuse: closing a socket with
	 * unread data resets it, and the caller would never see why. */
	if (lp_proto_recv(sock, &msg) < 0)
		return;
	if (peer_allowed(sock, err, sizeof(err)))
		dispatch(sock, &msg);
	else
		reply(sock, EACCES, err);
	lp_msg_release(&msg);
}

static void *agent_main(void *arg)
{
	struct pollfd fds[2] = {{.fd = listen_fd, .events = POLLIN},
				{.fd = timer_fd, .events = POLLIN}};

	(void)arg;
	for (;;) {
		if (poll(fds, 2, -1) < 0)
			continue;
		if (fds[1].revents & POLLIN) {
			uint64_t ticks;

			if (read(timer_fd, &ticks, sizeof(ticks)) > 0)
				lp_reap_retired();
		}
		if (fds[0].revents & POLLIN) {
			int sock = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

			if (sock >= 0) {
				serve(sock);
				close(sock);
			}
		}
		arm_reaper(lp_have_retired());
	}
	return NULL;
}

/*
 * Bind the socket before returning, so that a process started with
 * `lpatch run` can be patched as soon as its main() runs.
 */
int lp_agent_start(void)
{
	struct sockaddr_un addr;
	socklen_t len = lp_proto_address(getpid(), &addr);
	sigset_t all, old;
	pthread_t thread;
	int ret;

	listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (listen_fd < 0 || timer_fd < 0 || bind(listen_fd, (struct sockaddr *)&addr, len) < 0 ||
	    listen(listen_fd, 16) < 0)
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

/* In a forked child: the parent's agent thread and socket are not ours. */
void lp_agent_atfork_child(void)
{
	close(listen_fd);
	close(timer_fd);
	listen_fd = timer_fd = -1;
}
