/* SPDX-License-Identifier: MIT */
/*
 * load - a closed-loop load generator for bench/server.
 *
 *   load PORT CONNECTIONS MILLISECONDS
 *
 * Each connection sends a request, waits for the whole answer, sends the
 * next.  Prints one line:
 *   "requests R rps X p50 A p99 B max C old O new N bad W"
 * with latencies in microseconds, how many answers came from the original
 * handler and how many from the patch's, and how many were neither or
 * wrong.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

#define MAX_CONNS  256
#define HIST_US	   100000 /* 1 us buckets up to 100 ms; beyond, the last one */
#define MAX_EVENTS 64

struct client {
	int fd;
	uint64_t sent_at;
	char sent; /* every byte of the request */
	int have;
	char ans[BENCH_MSG];
};

static struct client clients[MAX_CONNS];
static uint32_t hist[HIST_US + 1];
static uint64_t requests, max_ns, old_answers, new_answers, bad_answers;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void send_request(struct client *c)
{
	char req[BENCH_MSG];

	c->sent = (char)('a' + (int)(requests % 26));
	memset(req, c->sent, sizeof(req));
	c->have = 0;
	c->sent_at = now_ns();
	if (write(c->fd, req, sizeof(req)) != (ssize_t)sizeof(req)) {
		perror("load: write");
		exit(1);
	}
}

static void record(struct client *c)
{
	uint64_t ns = now_ns() - c->sent_at, us = ns / 1000;

	hist[us < HIST_US ? us : HIST_US]++;
	max_ns = ns > max_ns ? ns : max_ns;
	requests++;
	old_answers += c->ans[0] == 'A';
	new_answers += c->ans[0] == 'B';
	/* The rest is the request backwards: all its bytes are the same. */
	bad_answers += c->ans[0] != 'A' && c->ans[0] != 'B';
	for (int i = 1; i < BENCH_MSG; i++)
		if (c->ans[i] != c->sent) {
			bad_answers++;
			break;
		}
}

/* Read what came; a whole answer is recorded and the next request sent. */
static void receive(struct client *c)
{
	ssize_t n = read(c->fd, c->ans + c->have, (size_t)(BENCH_MSG - c->have));

	if (n <= 0) {
		if (n < 0 && errno == EAGAIN)
			return;
		fprintf(stderr, "load: the server closed a connection\n");
		exit(1);
	}
	c->have += (int)n;
	if (c->have == BENCH_MSG) {
		record(c);
		send_request(c);
	}
}

static double percentile(double p)
{
	uint64_t want = (uint64_t)((double)requests * p), seen = 0;

	for (int us = 0; us <= HIST_US; us++) {
		seen += hist[us];
		if (seen > want)
			return us;
	}
	return HIST_US;
}

static int connect_one(int port)
{
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_port = htons((uint16_t)port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		perror("load: connect");
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int main(int argc, char **argv)
{
	struct epoll_event evs[MAX_EVENTS];
	int port, nconns, ms, epfd;
	uint64_t start, end;

	if (argc != 4 || (port = atoi(argv[1])) <= 0 || (nconns = atoi(argv[2])) <= 0 ||
	    nconns > MAX_CONNS || (ms = atoi(argv[3])) <= 0) {
		fprintf(stderr, "usage: load PORT CONNECTIONS(1-%d) MILLISECONDS\n", MAX_CONNS);
		return 2;
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 0; i < nconns; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &clients[i]};

		clients[i].fd = connect_one(port);
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, clients[i].fd, &ev) < 0) {
			perror("load: epoll_ctl");
			return 1;
		}
	}
	start = now_ns();
	end = start + (uint64_t)ms * 1000000u;
	for (int i = 0; i < nconns; i++)
		send_request(&clients[i]);
	while (now_ns() < end) {
		int n = epoll_wait(epfd, evs, MAX_EVENTS, 100);

		for (int i = 0; i < n; i++)
			receive(evs[i].data.ptr);
	}
	printf("requests %llu rps %.0f p50 %.0f p99 %.0f max %.0f old %llu new %llu bad %llu\n",
	       (unsigned long long)requests, (double)requests * 1e9 / (double)(now_ns() - start),
	       percentile(0.50), percentile(0.99), (double)max_ns / 1e3,
	       (unsigned long long)old_answers, (unsigned long long)new_answers,
	       (unsigned long long)bad_answers);
	return 0;
}
