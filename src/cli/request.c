// SPDX-License-Identifier: MIT
/*
 * One request to the agent of a process: find the process, connect, make
 * sure the socket really is that process's, send the words (and a
 * descriptor), relay PROGRESS messages and collect the RESULT.  Every
 * subcommand goes through here so that they all fail the same way.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* A request in flight: the request, its socket, and when it was sent. */
struct call {
	const struct lp_request *req;
	int sock;
	struct timespec start;
};

static void vfail(const char *fmt, va_list ap)
{
	char *text = NULL;

	lp_error("%s", vasprintf(&text, fmt, ap) < 0 ? "out of memory" : text);
	free(text);
}

static enum lp_req_status fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static enum lp_req_status fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(fmt, ap);
	va_end(ap);
	return LP_REQ_ERROR;
}

/*
 * The process is not there to talk to.  list probes every socket it sees,
 * and processes come and go under it: for it that is not worth a word.
 */
static enum lp_req_status gone(const struct lp_request *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum lp_req_status gone(const struct lp_request *req, const char *fmt, ...)
{
	if (!(req->flags & LP_REQ_PROBE)) {
		va_list ap;

		va_start(ap, fmt);
		vfail(fmt, ap);
		va_end(ap);
	}
	return LP_REQ_UNREACHABLE;
}

/*
 * Text from the runtime goes to a terminal and into logs that are read a
 * line at a time: flatten it to one line whatever it contains.
 */
static void one_line(char *s)
{
	size_t n;

	for (char *p = s; *p; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			*p = ' ';
	n = strlen(s);
	while (n && s[n - 1] == ' ')
		s[--n] = '\0';
}

static double elapsed(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (now.tv_nsec - start->tv_nsec) / 1e9;
}

/* Read the "Tgid:" of /proc/PID/status: a thread ID also has a /proc entry. */
static pid_t thread_group(pid_t pid)
{
	char path[64], line[128];
	pid_t tgid = pid;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return pid;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

/* The process must exist before "no runtime" can be the diagnosis. */
static enum lp_req_status check_process(const struct lp_request *req)
{
	char path[32];
	struct stat st;
	pid_t tgid;

	snprintf(path, sizeof(path), "/proc/%d", (int)req->pid);
	if (stat(path, &st) < 0)
		return gone(req, "no process with PID %d", (int)req->pid);
	tgid = thread_group(req->pid);
	if (tgid != req->pid)
		return gone(req, "%d is a thread of process %d, not a process", (int)req->pid,
			    (int)tgid);
	return LP_REQ_OK;
}

/*
 * Abstract socket names are not protected by file permissions: any process
 * could bind "@lpatch/PID" first.  Only talk to the socket if its owner is
 * the process we mean, so that a patch never goes to an impostor.
 */
static enum lp_req_status check_peer(const struct call *call)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(call->sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return fail("cannot identify the agent of process %d: %s", (int)call->req->pid,
			    strerror(errno));
	/* Also what a process of another PID namespace looks like to list. */
	if (cred.pid != call->req->pid)
		return gone(call->req,
			    "the socket of process %d belongs to process %d; not using it",
			    (int)call->req->pid, (int)cred.pid);
	return LP_REQ_OK;
}

static enum lp_req_status connect_agent(struct call *call)
{
	const struct lp_request *req = call->req;

	call->sock = lp_proto_connect(req->pid);
	if (call->sock >= 0)
		return check_peer(call);
	if (errno == ECONNREFUSED || errno == ENOENT)
		return gone(req, "process %d has no lpatch runtime (start it with 'lpatch run')",
			    (int)req->pid);
	return fail("cannot connect to process %d: %s", (int)req->pid, strerror(errno));
}

static enum lp_req_status closed(const struct call *call)
{
	return gone(call->req, "process %d closed the connection (did it exit?)",
		    (int)call->req->pid);
}

static enum lp_req_status send_request(struct call *call)
{
	const struct lp_request *req = call->req;
	size_t len = 0, pos = 0;
	char *payload;
	int ret;

	for (int i = 0; i < req->nwords; i++)
		len += strlen(req->words[i]) + 1;
	payload = malloc(len ? len : 1);
	if (!payload)
		return fail("out of memory");
	for (int i = 0; i < req->nwords; i++) {
		size_t n = strlen(req->words[i]) + 1;

		memcpy(payload + pos, req->words[i], n);
		pos += n;
	}
	ret = lp_proto_send(call->sock, LP_MSG_REQUEST, 0, payload, len, req->fd);
	free(payload);
	clock_gettime(CLOCK_MONOTONIC, &call->start);
	/* Closed already: it may have answered first (a refusal); read that. */
	if (ret == 0 || errno == EPIPE || errno == ECONNRESET)
		return LP_REQ_OK;
	return fail("%s: cannot send the request: %s", req->what, strerror(errno));
}

/* Wait until a message can be read, within the request's timeout. */
static enum lp_req_status wait_readable(const struct call *call)
{
	const struct lp_request *req = call->req;
	struct pollfd pfd = {.fd = call->sock, .events = POLLIN};
	int n, ms = -1;

	do {
		if (req->timeout > 0) {
			double left = req->timeout - elapsed(&call->start);

			ms = left > 0 ? (int)(left * 1000) + 1 : 0;
		}
		n = poll(&pfd, 1, ms);
	} while (n < 0 && errno == EINTR);
	if (n > 0)
		return LP_REQ_OK;
	if (n == 0)
		return fail("%s: timed out after %d s waiting for %s", req->what, req->timeout,
			    req->waiting_for ? req->waiting_for : "an answer");
	return fail("%s: %s", req->what, strerror(errno));
}

static void show_progress(const struct call *call, char *text)
{
	unsigned int flags = call->req->flags;

	if (!(flags & LP_REQ_PROGRESS))
		return;
	one_line(text);
	if (flags & LP_REQ_VERBOSE)
		fprintf(stderr, "[%8.3fs] %s\n", elapsed(&call->start), text);
	else
		fprintf(stderr, "%s\n", text);
}

static enum lp_req_status refused(const struct call *call, struct lp_msg *msg)
{
	int code = msg->code < 0 ? -msg->code : msg->code;

	one_line(msg->payload);
	fail("%s: %s", call->req->what, msg->payload[0] ? msg->payload : strerror(code));
	return LP_REQ_REFUSED;
}

/* Relay PROGRESS messages until the RESULT arrives. */
static enum lp_req_status receive_result(struct call *call, char **answer)
{
	bool reset = false;

	for (;;) {
		enum lp_req_status st = wait_readable(call);
		struct lp_msg msg;

		if (st != LP_REQ_OK)
			return st;
		if (lp_proto_recv(call->sock, &msg) < 0) {
			/*
			 * An agent that answers without reading the request
			 * (a refused caller) and closes makes the kernel
			 * report ECONNRESET once, ahead of the RESULT still
			 * queued for us: read again before giving up.
			 */
			if ((errno == ECONNRESET || errno == EPIPE) && !reset) {
				reset = true;
				continue;
			}
			if (errno == ECONNRESET || errno == EPIPE)
				return closed(call);
			return fail("%s: %s from process %d", call->req->what,
				    errno == EPROTO ? "malformed message" : strerror(errno),
				    (int)call->req->pid);
		}
		switch (msg.type) {
		case LP_MSG_PROGRESS:
			show_progress(call, msg.payload);
			break;
		case LP_MSG_RESULT:
			if (msg.code != 0) {
				st = refused(call, &msg);
			} else {
				*answer = msg.payload;
				msg.payload = NULL;
			}
			lp_msg_release(&msg);
			return st;
		default:
			lp_msg_release(&msg);
			return fail("%s: unexpected message from process %d", call->req->what,
				    (int)call->req->pid);
		}
		lp_msg_release(&msg);
	}
}

enum lp_req_status lp_request(const struct lp_request *req, char **answer)
{
	struct call call = {.req = req, .sock = -1};
	enum lp_req_status st;

	*answer = NULL;
	st = check_process(req);
	if (st == LP_REQ_OK)
		st = connect_agent(&call);
	if (st == LP_REQ_OK)
		st = send_request(&call);
	if (st == LP_REQ_OK)
		st = receive_result(&call, answer);
	if (call.sock >= 0)
		close(call.sock);
	return st;
}

bool lp_request_add(struct lp_request *req, const char *word)
{
	if (req->nwords >= LP_PROTO_MAX_ARGS)
		return false;
	req->words[req->nwords++] = word;
	return true;
}
