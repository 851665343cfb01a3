// SPDX-License-Identifier: MIT
/*
 * One request to the agent of a process: find the process, connect, make
 * sure the socket really is that process's, send the words (and a
 * descriptor), relay PROGRESS messages and collect the RESULT.  Every
 * subcommand goes through here so that they all fail the same way; the
 * steps are also there one by one (lp_call_*) for wait.c, which acts
 * while it waits.
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

static void vfail(const struct lp_request *req, const char *fmt, va_list ap)
{
	char *text = NULL;

	if (req->flags & LP_REQ_SILENT)
		return;
	lp_error("%s", vasprintf(&text, fmt, ap) < 0 ? "out of memory" : text);
	free(text);
}

static enum lp_req_status fail(const struct lp_request *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum lp_req_status fail(const struct lp_request *req, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(req, fmt, ap);
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
		vfail(req, fmt, ap);
		va_end(ap);
	}
	return LP_REQ_UNREACHABLE;
}

double lp_call_elapsed(const struct lp_call *call)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - call->start.tv_sec) +
	       (now.tv_nsec - call->start.tv_nsec) / 1e9;
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

static enum lp_req_status check_process(const struct lp_request *req);

int lp_check_process(pid_t pid)
{
	struct lp_request req = {.pid = pid};

	return check_process(&req) == LP_REQ_OK ? 0 : -1;
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
static enum lp_req_status check_peer(const struct lp_call *call)
{
	const struct lp_request *req = call->req;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(call->sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return fail(req, "cannot identify the agent of process %d: %s", (int)req->pid,
			    strerror(errno));
	/* Also what a process of another PID namespace looks like to list. */
	if (cred.pid != req->pid)
		return gone(req, "the socket of process %d belongs to process %d; not using it",
			    (int)req->pid, (int)cred.pid);
	return LP_REQ_OK;
}

static enum lp_req_status connect_agent(struct lp_call *call)
{
	const struct lp_request *req = call->req;

	call->sock = lp_proto_connect(req->pid);
	if (call->sock >= 0)
		return check_peer(call);
	if (errno == EAGAIN)
		return fail(req, "cannot connect to process %d: its agent accepts no connection",
			    (int)req->pid);
	if (errno == ECONNREFUSED || errno == ENOENT)
		return gone(req,
			    "process %d has no lpatch runtime (start it with 'lpatch run', or "
			    "apply a patch: that injects one)",
			    (int)req->pid);
	return fail(req, "cannot connect to process %d: %s", (int)req->pid, strerror(errno));
}

static enum lp_req_status closed(const struct lp_call *call)
{
	return gone(call->req, "process %d closed the connection (did it exit?)",
		    (int)call->req->pid);
}

static enum lp_req_status send_request(struct lp_call *call)
{
	const struct lp_request *req = call->req;
	size_t len = 0, pos = 0;
	char *payload;
	int ret;

	for (int i = 0; i < req->nwords; i++)
		len += strlen(req->words[i]) + 1;
	payload = malloc(len ? len : 1);
	if (!payload)
		return fail(req, "out of memory");
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
	return fail(req, "%s: cannot send the request: %s", req->what, strerror(errno));
}

/* Wait until a message can be read or @until (see lp_call_wait) passes. */
static enum lp_req_status wait_readable(const struct lp_call *call, double until)
{
	struct pollfd pfd = {.fd = call->sock, .events = POLLIN};
	int n, ms = -1;

	do {
		if (until >= 0) {
			double left = until - lp_call_elapsed(call);

			ms = left > 0 ? (int)(left * 1000) + 1 : 0;
		}
		n = poll(&pfd, 1, ms);
	} while (n < 0 && errno == EINTR);
	if (n > 0)
		return LP_REQ_OK;
	if (n == 0)
		return LP_REQ_TIMEOUT;
	return fail(call->req, "%s: %s", call->req->what, strerror(errno));
}

void lp_call_note(const struct lp_call *call, const char *fmt, ...)
{
	unsigned int flags = call->req->flags;
	char *text;
	va_list ap;
	int n;

	if (!(flags & LP_REQ_PROGRESS))
		return;
	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	lp_one_line(text);
	if (flags & LP_REQ_VERBOSE)
		fprintf(stderr, "[%8.3fs] %s\n", lp_call_elapsed(call), text);
	else
		fprintf(stderr, "%s\n", text);
	free(text);
}

static void progress(struct lp_call *call, const char *text)
{
	lp_call_note(call, "%s", text);
	if (call->on_progress)
		call->on_progress(call, text);
}

/* Read one message that poll() said is there. */
static enum lp_req_status receive(const struct lp_call *call, struct lp_msg *msg)
{
	const struct lp_request *req = call->req;
	bool reset = false;

	while (lp_proto_recv(call->sock, msg) < 0) {
		/*
		 * An agent that answers without reading the request (a
		 * refused caller) and closes makes the kernel report
		 * ECONNRESET once, ahead of the RESULT still queued for us:
		 * read again before giving up (a closed socket does not block).
		 */
		if ((errno == ECONNRESET || errno == EPIPE) && !reset) {
			reset = true;
			continue;
		}
		if (errno == ECONNRESET || errno == EPIPE)
			return closed(call);
		return fail(req, "%s: %s from process %d", req->what,
			    errno == EPROTO ? "malformed message" : strerror(errno), (int)req->pid);
	}
	return LP_REQ_OK;
}

enum lp_req_status lp_call_wait(struct lp_call *call, double until, struct lp_result *res)
{
	enum lp_req_status st;
	struct lp_msg msg;

	for (;;) {
		st = wait_readable(call, until);
		if (st == LP_REQ_OK)
			st = receive(call, &msg);
		if (st != LP_REQ_OK)
			return st;
		if (msg.type != LP_MSG_PROGRESS)
			break;
		progress(call, msg.payload);
		lp_msg_release(&msg);
	}
	if (msg.type == LP_MSG_RESULT) {
		res->code = msg.code < 0 ? -msg.code : msg.code;
		res->text = msg.payload;
		msg.payload = NULL;
	} else {
		st = fail(call->req, "%s: unexpected message from process %d", call->req->what,
			  (int)call->req->pid);
	}
	lp_msg_release(&msg);
	return st;
}

enum lp_req_status lp_call_start(struct lp_call *call, const struct lp_request *req)
{
	enum lp_req_status st;

	call->req = req;
	call->sock = -1;
	st = check_process(req);
	if (st == LP_REQ_OK)
		st = connect_agent(call);
	if (st == LP_REQ_OK)
		st = send_request(call);
	return st;
}

void lp_call_end(struct lp_call *call)
{
	if (call->sock >= 0)
		close(call->sock);
	call->sock = -1;
}

enum lp_req_status lp_call_timed_out(const struct lp_call *call, int seconds)
{
	const struct lp_request *req = call->req;

	return fail(req, "%s: timed out after %d s waiting for %s", req->what, seconds,
		    req->waiting_for ? req->waiting_for : "an answer");
}

enum lp_req_status lp_call_outcome(const struct lp_call *call, enum lp_req_status st,
				   struct lp_result *res, char **answer)
{
	*answer = NULL;
	if (st == LP_REQ_OK && res->code) {
		lp_one_line(res->text);
		fail(call->req, "%s: %s", call->req->what,
		     res->text[0] ? res->text : strerror(res->code));
		st = LP_REQ_REFUSED;
	}
	if (st == LP_REQ_OK) {
		*answer = res->text;
		res->text = NULL;
	}
	free(res->text);
	res->text = NULL;
	return st;
}

enum lp_req_status lp_request(const struct lp_request *req, char **answer)
{
	struct lp_call call = {0};
	struct lp_result res = {0};
	enum lp_req_status st = lp_call_start(&call, req);

	if (st == LP_REQ_OK)
		st = lp_call_wait(&call, req->timeout > 0 ? req->timeout : -1, &res);
	if (st == LP_REQ_TIMEOUT)
		st = lp_call_timed_out(&call, req->timeout);
	st = lp_call_outcome(&call, st, &res, answer);
	lp_call_end(&call);
	return st;
}

bool lp_request_add(struct lp_request *req, const char *word)
{
	if (req->nwords >= LP_PROTO_MAX_ARGS)
		return false;
	req->words[req->nwords++] = word;
	return true;
}
