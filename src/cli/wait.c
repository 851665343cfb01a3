// SPDX-License-Identifier: MIT
/*
 * Waiting for a transition, as kpatch waits for the kernel's.  apply and
 * revert keep their connection until the runtime's RESULT says that every
 * thread has switched.  After a quarter of the timeout the threads that
 * have not switched are signalled (klp_send_signals), so that those
 * blocked in a system call get their registers checked; at the end the
 * threads still in the way are named and, for apply, the transition is
 * reversed, so that a patch is never left half applied by a timeout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/list.h"

/* Pending threads named in a timeout message; the others are counted. */
#define MAX_BLOCKERS 3
/* Bound on the requests sent beside the one we wait for. */
#define AUX_TIMEOUT 10

struct waiter {
	struct lp_call call; /* the apply or revert request */
	const struct lp_wait *how;
	char *learned; /* the patch's name, learned from the runtime */
};

static const char *patch_name(const struct waiter *w)
{
	return w->how->name ? w->how->name : w->learned;
}

/* "'fix': patching: 3 of 10 threads switched" names the patch. */
static void learn_name(struct lp_call *call, const char *text)
{
	struct waiter *w = container_of(call, struct waiter, call);
	char tail[32];
	const char *end;

	if (patch_name(w) || text[0] != '\'')
		return;
	snprintf(tail, sizeof(tail), "': %s: ", lp_transition_verb(w->how->target));
	end = strstr(text + 1, tail);
	if (end)
		w->learned = strndup(text + 1, (size_t)(end - text - 1));
}

static int aux_timeout(const struct waiter *w)
{
	int timeout = w->call.req->timeout;

	return timeout > 0 && timeout < AUX_TIMEOUT ? timeout : AUX_TIMEOUT;
}

/*
 * Send @words (NULL-terminated) on a connection of their own, beside the
 * request we wait for, and collect the RESULT.  Nothing is printed: the
 * caller decides what a failure means.
 */
static enum lp_req_status aux_request(const struct waiter *w, const char *const *words,
				      struct lp_result *res)
{
	const struct lp_request *parent = w->call.req;
	struct lp_request req = {.pid = parent->pid,
				 .fd = -1,
				 .timeout = aux_timeout(w),
				 .what = parent->what,
				 .flags = LP_REQ_SILENT};
	struct lp_call call = {0};
	enum lp_req_status st;

	while (*words)
		lp_request_add(&req, *words++);
	st = lp_call_start(&call, &req);
	if (st == LP_REQ_OK)
		st = lp_call_wait(&call, req.timeout, res);
	lp_call_end(&call);
	return st;
}

/*
 * Nudge the threads that have not switched.  Failing is harmless (the
 * transition may just have completed): the wait goes on either way.
 */
static void signal_threads(struct waiter *w)
{
	static const char *const words[] = {"signal", NULL};
	struct lp_result res = {0};

	lp_call_note(&w->call, "lpatch: signalling threads that have not switched");
	if (aux_request(w, words, &res) == LP_REQ_OK && res.code == 0)
		lp_call_note(&w->call, "%s", res.text);
	free(res.text);
}

/*
 * Wait up to the timeout from @from (seconds since the request was sent)
 * for the RESULT, signalling the threads after a quarter of it.
 */
static enum lp_req_status wait_phase(struct waiter *w, double from, struct lp_result *res)
{
	double timeout = w->call.req->timeout;
	enum lp_req_status st;

	if (timeout <= 0)
		return lp_call_wait(&w->call, -1, res);
	st = lp_call_wait(&w->call, from + timeout / 4, res);
	if (st != LP_REQ_TIMEOUT)
		return st;
	signal_threads(w);
	return lp_call_wait(&w->call, from + timeout, res);
}

/* Is the transition @status shows ours?  It names our patch if we did not know it. */
static bool still_ours(struct waiter *w, struct json_object *status)
{
	struct json_object *tr = lp_json_obj(status, "transition");
	const char *patch = lp_json_str(tr, "patch", NULL);

	if (!patch || strcmp(lp_json_str(tr, "target", ""), w->how->target))
		return false;
	if (!patch_name(w))
		w->learned = strdup(patch);
	return patch_name(w) && !strcmp(patch_name(w), patch);
}

static void describe_thread(FILE *out, struct json_object *t)
{
	const char *fn = lp_json_str(t, "blocking_function", NULL);
	const char *reason = lp_json_str(t, "reason", NULL);

	fprintf(out, "thread %lld (%s)", lp_json_int(t, "tid", 0), lp_json_str(t, "name", "?"));
	if (fn)
		fprintf(out, " is sleeping on '%s'", fn);
	else if (reason)
		fprintf(out, ": %s", reason);
	else
		fputs(" has not switched yet", out);
}

/*
 * ": thread 1240 (worker) is sleeping on 'compute', ... and 2 more" for
 * the pending threads of @status, "" when it names none, NULL without memory.
 */
static char *describe_blockers(struct json_object *status)
{
	size_t n = lp_json_len(status, "threads"), pending = 0, size;
	char *text = NULL;
	FILE *out = open_memstream(&text, &size);

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		struct json_object *t = lp_json_idx(status, "threads", i);

		if (!lp_json_bool(t, "pending", false) || ++pending > MAX_BLOCKERS)
			continue;
		fputs(pending == 1 ? ": " : ", ", out);
		describe_thread(out, t);
	}
	if (pending > MAX_BLOCKERS)
		fprintf(out, " and %zu more", pending - MAX_BLOCKERS);
	if (fclose(out) != 0) {
		free(text);
		return NULL;
	}
	lp_one_line(text);
	return text;
}

/* The one line that ends a timed-out wait; returns LP_REQ_ERROR. */
static enum lp_req_status stuck(const struct waiter *w, const char *blockers, const char *outcome)
{
	const struct lp_request *req = w->call.req;

	lp_error("%s: transition not complete after %d s%s; %s", req->what, req->timeout,
		 blockers ? blockers : "", outcome);
	return LP_REQ_ERROR;
}

/* revert: a transition that does not complete is left to 'lpatch force'. */
static enum lp_req_status leave(const struct waiter *w, const char *blockers)
{
	char outcome[96];

	snprintf(outcome, sizeof(outcome), "still in progress (finish it with 'lpatch force %d')",
		 (int)w->call.req->pid);
	return stuck(w, blockers, outcome);
}

/* Ask for the reversal; false, with @why filled, when it did not start. */
static bool request_reversal(const struct waiter *w, char *why, size_t size)
{
	const char *const words[] = {"revert", patch_name(w), "nowait", NULL};
	struct lp_result rev = {0};
	enum lp_req_status st;

	lp_call_note(&w->call, "lpatch: reversing the transition of '%s'", patch_name(w));
	st = aux_request(w, words, &rev);
	if (st != LP_REQ_OK) {
		snprintf(why, size, "reversing it failed: no answer");
	} else if (rev.code) {
		lp_one_line(rev.text);
		snprintf(why, size, "reversing it failed: %s",
			 rev.text[0] ? rev.text : strerror(rev.code));
	}
	free(rev.text);
	return st == LP_REQ_OK && !rev.code;
}

/*
 * apply: take the patch back, as kpatch does when a transition stalls,
 * and wait (another timeout at most) for the apply's RESULT, which says
 * how the reversal ended.
 */
static enum lp_req_status reverse(struct waiter *w, const char *blockers, struct lp_result *res)
{
	enum lp_req_status st;
	char outcome[512];

	if (!request_reversal(w, outcome, sizeof(outcome)))
		return stuck(w, blockers, outcome);
	st = wait_phase(w, lp_call_elapsed(&w->call), res);
	if (st == LP_REQ_TIMEOUT)
		snprintf(outcome, sizeof(outcome),
			 "the reversal is still in progress (see 'lpatch status %d')",
			 (int)w->call.req->pid);
	else if (st != LP_REQ_OK)
		return st;
	else if (res->code == ECANCELED)
		snprintf(outcome, sizeof(outcome), "the patch was reversed");
	else if (res->code == 0)
		snprintf(outcome, sizeof(outcome),
			 "it completed meanwhile, so the patch is being disabled");
	else
		snprintf(outcome, sizeof(outcome), "%s", res->text);
	lp_one_line(outcome);
	return stuck(w, blockers, outcome);
}

/*
 * The timeout passed.  Ask which threads are in the way, and act unless
 * the transition ended as the time ran out (its RESULT is then on its way).
 */
static enum lp_req_status give_up(struct waiter *w, struct lp_result *res)
{
	struct json_object *status;
	enum lp_req_status st;
	char *blockers;

	lp_query_status(w->call.req->pid, true, LP_REQ_SILENT, aux_timeout(w), &status);
	if (!still_ours(w, status)) {
		json_object_put(status);
		st = wait_phase(w, lp_call_elapsed(&w->call), res);
		if (st == LP_REQ_TIMEOUT)
			st = lp_call_timed_out(&w->call, (int)lp_call_elapsed(&w->call));
		return st;
	}
	blockers = describe_blockers(status);
	json_object_put(status);
	st = w->how->reverse ? reverse(w, blockers, res) : leave(w, blockers);
	free(blockers);
	return st;
}

enum lp_req_status lp_wait_transition(const struct lp_request *req, const struct lp_wait *how,
				      char **answer)
{
	struct waiter w = {.call.on_progress = learn_name, .how = how};
	struct lp_result res = {0};
	enum lp_req_status st = lp_call_start(&w.call, req);

	if (st == LP_REQ_OK)
		st = wait_phase(&w, 0, &res);
	if (st == LP_REQ_TIMEOUT)
		st = give_up(&w, &res);
	st = lp_call_outcome(&w.call, st, &res, answer);
	lp_call_end(&w.call);
	free(w.learned);
	return st;
}
