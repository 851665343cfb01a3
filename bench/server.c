/* SPDX-License-Identifier: MIT */
/*
 * server - a loopback TCP server: one thread in epoll_wait() answers every
 * request (server.h) through bench_handle(), the function the benchmark
 * patches and unpatches while bench/load keeps it busy.
 *
 *   port   "port P": where it listens, on 127.0.0.1
 *   quit   "bye"
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "server.h"

#define MAX_FDS	   1024
#define MAX_EVENTS 64

int bench_handle(const char *req, char *ans);

/* The answer: the request backwards, behind the handler's mark. */
__attribute__((noipa, optimize("no-omit-frame-pointer", "no-shrink-wrap"))) int
bench_handle(const char *req, char *ans)
{
	ans[0] = 'A';
	for (int i = 1; i < BENCH_MSG; i++)
		ans[i] = req[BENCH_MSG - i];
	return BENCH_MSG;
}

/* What a connection has read of its current request. */
struct conn {
	char req[BENCH_MSG];
	int have;
};

static struct conn conns[MAX_FDS];
static int listen_fd, epfd;

static void add_fd(int fd)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};

	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		abort();
}

static void accept_all(void)
{
	int fd, one = 1;

	while ((fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		if (fd >= MAX_FDS) {
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		conns[fd].have = 0;
		add_fd(fd);
	}
}

/* Answer every whole request that has arrived; close on EOF or error. */
static void serve(int fd)
{
	struct conn *c = &conns[fd];
	char ans[BENCH_MSG];

	for (;;) {
		ssize_t n = read(fd, c->req + c->have, (size_t)(BENCH_MSG - c->have));

		if (n <= 0) {
			if (n == 0 || errno != EAGAIN)
				close(fd);
			return;
		}
		c->have += (int)n;
		if (c->have < BENCH_MSG)
			continue;
		c->have = 0;
		/* Loopback with one request in flight: the answer fits the buffer. */
		if (write(fd, ans, (size_t)bench_handle(c->req, ans)) != BENCH_MSG) {
			close(fd);
			return;
		}
	}
}

static void *server_main(void *arg)
{
	struct epoll_event evs[MAX_EVENTS];

	(void)arg;
	pthread_setname_np(pthread_self(), "server");
	for (;;) {
		int n = epoll_wait(epfd, evs, MAX_EVENTS, -1);

		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == listen_fd)
				accept_all();
			else
				serve(evs[i].data.fd);
		}
	}
	return NULL;
}

int main(void)
{
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	char line[256], *arg;
	pthread_t thread;

	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (listen_fd < 0 || epfd < 0 || bind(listen_fd, (struct sockaddr *)&addr, len) < 0 ||
	    listen(listen_fd, 128) < 0 ||
	    getsockname(listen_fd, (struct sockaddr *)&addr, &len) < 0) {
		perror("server");
		return 1;
	}
	add_fd(listen_fd);
	if (pthread_create(&thread, NULL, server_main, NULL))
		abort();
	target_ready();
	while (next_command(line, sizeof(line), &arg)) {
		if (strcmp(line, "port") == 0)
			reply("port %d", ntohs(addr.sin_port));
		else if (strcmp(line, "quit") == 0)
			break;
		else
			reply("error unknown command %s", line);
	}
	reply("bye");
	fflush(stdout);
	_exit(0);
}
