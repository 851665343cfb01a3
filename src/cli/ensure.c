// SPDX-License-Identifier: MIT
/*
 * Before `apply` sends its request: make sure the process has a runtime,
 * injecting one (src/inject) when it has no agent, and that the runtime
 * knows every thread.  A runtime that came by injection does not know the
 * threads that ran before it: they are read with ptrace here and handed
 * over ("runtime" says which threads it knows, "adopt" registers the
 * others).  This is done on every apply, so that a thread created in a way
 * the runtime cannot see (or an apply interrupted before it got that far)
 * is caught by the next one; it costs nothing once all are known.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "inject/inject.h"

/* Rounds of "runtime" and "adopt": a thread being created may appear late. */
#define ADOPT_ROUNDS 3
#define AUX_TIMEOUT  10

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void verbose(const struct lp_runtime_report *rep, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A --verbose line; it says how long things took itself. */
static void verbose(const struct lp_runtime_report *rep, const char *fmt, ...)
{
	va_list ap;

	if (!(rep->flags & LP_REQ_VERBOSE))
		return;
	fputs("lpatch: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * Is there an agent to talk to?  1 yes, 0 no, -1 when the agent's name is
 * taken by another process (a child that kept a dead process's socket): a
 * runtime injected now could not listen there.  Nothing is sent.
 */
static int has_agent(pid_t pid, const char *what)
{
	int sock = lp_proto_connect(pid);
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (sock < 0)
		return errno != ECONNREFUSED && errno != ENOENT;
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid != pid) {
		lp_error("%s: the name of its agent's socket (@lpatch/%d) is taken by process %d",
			 what, (int)pid, (int)cred.pid);
		close(sock);
		return -1;
	}
	close(sock);
	return 1;
}

/* "runtime": the threads it knows, sorted, and whether it was injected. */
static int ask_runtime(pid_t pid, const char *what, const struct lp_runtime_report *rep,
		       bool *injected, pid_t **known, size_t *n)
{
	struct lp_request req = {
	    .pid = pid, .fd = -1, .timeout = AUX_TIMEOUT, .what = what, .flags = LP_REQ_SILENT};
	struct json_object *root;
	enum lp_req_status st;
	char *answer;

	*injected = false;
	*known = NULL;
	*n = 0;
	lp_request_add(&req, "runtime");
	st = lp_request(&req, &answer);
	/* A runtime older than injection refuses the request: it was preloaded. */
	if (st == LP_REQ_REFUSED)
		return 0;
	if (st != LP_REQ_OK) {
		lp_error("%s: the runtime does not answer", what);
		return -1;
	}
	root = json_tokener_parse(answer);
	free(answer);
	*injected = lp_json_bool(root, "injected", false);
	if (lp_json_str(root, "hook_error", NULL))
		verbose(rep, "the runtime cannot catch the threads the process creates: %s",
			lp_json_str(root, "hook_error", ""));
	*n = lp_json_len(root, "threads");
	*known = calloc(*n ? *n : 1, sizeof(**known));
	for (size_t i = 0; *known && i < *n; i++)
		(*known)[i] = (pid_t)json_object_get_int(lp_json_idx(root, "threads", i));
	json_object_put(root);
	if (!*known) {
		lp_error("%s: out of memory", what);
		return -1;
	}
	lp_sort_pids(*known, *n);
	return 0;
}

/* "TID:TP:SP,..." */
static char *records_text(const struct lp_thread_rec *recs, size_t n)
{
	size_t size;
	char *text = NULL;
	FILE *out = open_memstream(&text, &size);

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%d:%llx:%llx", i ? "," : "", (int)recs[i].tid,
			(unsigned long long)recs[i].tp, (unsigned long long)recs[i].sp);
	if (fclose(out) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* "adopt": the runtime registers them; *@added says how many it did not know. */
static int hand_over(pid_t pid, const char *what, const struct lp_thread_rec *recs, size_t n,
		     size_t *added)
{
	struct lp_request req = {.pid = pid, .fd = -1, .timeout = AUX_TIMEOUT, .what = what};
	char *text = records_text(recs, n), *answer;
	enum lp_req_status st;

	if (!text) {
		lp_error("%s: out of memory", what);
		return -1;
	}
	lp_request_add(&req, "adopt");
	lp_request_add(&req, text);
	st = lp_request(&req, &answer);
	free(text);
	if (st != LP_REQ_OK)
		return -1;
	if (sscanf(answer, "%zu", added) != 1)
		*added = 0;
	free(answer);
	return 0;
}

/* Register with an injected runtime the threads it does not know. */
static int adopt(pid_t pid, const char *what, struct lp_runtime_report *rep)
{
	for (int round = 0; round < ADOPT_ROUNDS; round++) {
		char err[LP_ERR_LEN];
		struct lp_thread_rec *recs;
		bool injected;
		pid_t *known;
		size_t nknown, n, added;
		int ret;

		if (ask_runtime(pid, what, rep, &injected, &known, &nknown) < 0)
			return -1;
		if (!injected) {
			free(known);
			return 0;
		}
		rep->was_injected = true;
		ret = lp_inject_collect(pid, known, nknown, &recs, &n, &rep->st, err, sizeof(err));
		free(known);
		if (ret < 0) {
			lp_error("%s: cannot read the threads of the process: %s", what, err);
			return -1;
		}
		if (n == 0)
			return 0;
		ret = hand_over(pid, what, recs, n, &added);
		free(recs);
		if (ret < 0)
			return -1;
		rep->registered += added;
		verbose(rep, "registered %zu thread%s that ran before the runtime came", added,
			added == 1 ? "" : "s");
		if (added == 0)
			return 0;
	}
	return 0;
}

/* The runtime to inject: an absolute path, for the process resolves it. */
static int runtime_file(const char *what, char *path, size_t size)
{
	char buf[PATH_MAX];
	const char *runtime = lp_runtime_path(buf, sizeof(buf));

	if (size < PATH_MAX || !realpath(runtime, path)) {
		lp_error("%s: cannot inject the runtime: %s: %s", what, runtime, strerror(errno));
		return -1;
	}
	return 0;
}

/* What check_fit() needs, and whether it was what refused. */
struct fit {
	pid_t pid;
	int patch_fd;
	bool refused;
};

/*
 * A patch for another program, or another build, is refused before the
 * process is touched: the runtime would refuse it too, once injected.
 */
static int check_fit(void *arg, char *err, size_t errlen)
{
	struct fit *f = arg;
	struct lp_patch_info pi;
	int ret;

	if (lp_patch_info_read(f->patch_fd, &pi, err, errlen) < 0) {
		f->refused = true;
		return -1;
	}
	ret = lp_patch_fits(&pi, f->pid, err, errlen);
	lp_patch_info_free(&pi);
	f->refused = ret < 0;
	return ret;
}

int lp_ensure_runtime(pid_t pid, const char *what, int patch_fd, struct lp_runtime_report *rep)
{
	int agent;

	if (lp_check_process(pid) < 0)
		return -1;
	agent = has_agent(pid, what);
	if (agent < 0)
		return -1;
	if (!agent) {
		char runtime[PATH_MAX], err[LP_ERR_LEN];
		struct fit fit = {.pid = pid, .patch_fd = patch_fd};

		if (runtime_file(what, runtime, sizeof(runtime)) < 0)
			return -1;
		if (lp_inject(pid, runtime, check_fit, &fit, &rep->st, err, sizeof(err)) < 0) {
			if (fit.refused)
				lp_error("%s: %s; the runtime was not injected", what, err);
			else
				lp_error("%s: cannot inject the runtime: %s", what, err);
			return -1;
		}
		rep->injected = true;
		verbose(rep,
			"injected the runtime into %d through thread %d (in %s): %.3f ms, "
			"longest thread stop %.3f ms",
			(int)pid, (int)rep->st.thread, rep->st.where, ms(rep->st.borrowed_ns),
			ms(rep->st.longest_stop_ns));
	}
	if (adopt(pid, what, rep) < 0)
		return -1;
	if (rep->injected || rep->registered)
		verbose(rep, "%u thread stop%s in all, the longest %.3f ms (thread %d)",
			rep->st.stops, rep->st.stops == 1 ? "" : "s", ms(rep->st.longest_stop_ns),
			(int)rep->st.longest_tid);
	return 0;
}
