// SPDX-License-Identifier: MIT
/*
 * One apply to many processes: `apply PID PID... PATCH.so`, `apply --all`,
 * and `apply --json`.  Each process gets a child of this one (pool.c), at
 * most PARALLEL at a time, which does exactly what a single apply does
 * (lp_apply_one(): inject if needed, apply, wait for the transition); what
 * the injection cost comes back through shared memory, and the results
 * are printed as one table, or one JSON array, in PID order.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

#define PARALLEL 16

struct result {
	pid_t pid;
	int rc;
	bool reported;
	char comm[32];
	char text[LP_ERR_LEN];
	struct lp_runtime_report rep;
};

/* The last line of @text, without "lpatch: " and @prefix. */
static void last_line(const char *text, const char *prefix, char *buf, size_t size)
{
	const char *line = text, *end = text + strlen(text);

	while (end > text && end[-1] == '\n')
		end--;
	for (const char *p = text; p < end; p++)
		if (*p == '\n')
			line = p + 1;
	if (end - line >= 8 && strncmp(line, "lpatch: ", 8) == 0)
		line += 8;
	if ((size_t)(end - line) >= strlen(prefix) && strncmp(line, prefix, strlen(prefix)) == 0)
		line += strlen(prefix);
	snprintf(buf, size, "%.*s", (int)(end - line < (long)size ? end - line : (long)size - 1),
		 line);
}

struct fleet {
	struct result *res;
	const struct lp_apply_target *a;
};

/* In a child: one apply, as a single apply would do it. */
static int apply_one(size_t i, void *arg)
{
	struct fleet *f = arg;
	struct result *r = &f->res[i];
	int rc = lp_apply_one(r->pid, f->a, 0, false, &r->rep);

	r->reported = true;
	return rc;
}

static void applied(size_t i, const char *out, const char *err, int status, void *arg)
{
	struct fleet *f = arg;
	struct result *r = &f->res[i];
	char prefix[LP_ERR_LEN];

	if (status < 0 || !WIFEXITED(status) || !r->reported) {
		r->rc = LP_EXIT_FAIL;
		if (status < 0)
			last_line(err, "", r->text, sizeof(r->text));
		else
			snprintf(r->text, sizeof(r->text),
				 "the apply to this process died (status %#x)", status);
		return;
	}
	r->rc = WEXITSTATUS(status);
	snprintf(prefix, sizeof(prefix), "apply %s to %d: ", f->a->arg, (int)r->pid);
	last_line(r->rc ? err : out, prefix, r->text, sizeof(r->text));
	lp_one_line(r->text);
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static const char *runtime_word(const struct result *r)
{
	if (r->rep.injected)
		return "injected";
	return r->rep.was_injected || r->rc == 0 ? "present" : "-";
}

static void print_table(const struct result *res, size_t n, bool verbose)
{
	printf("%-8s %-16s %-7s %-9s %s\n", "PID", "COMM", "RESULT", "RUNTIME", "DETAIL");
	for (size_t i = 0; i < n; i++) {
		const struct result *r = &res[i];

		printf("%-8d %-16s %-7s %-9s %s", (int)r->pid, r->comm, r->rc ? "failed" : "ok",
		       runtime_word(r), r->text);
		if (verbose && r->rep.injected)
			printf(" [thread %d in %s for %.3f ms; %u stops, longest %.3f ms]",
			       (int)r->rep.st.thread, r->rep.st.where, ms(r->rep.st.borrowed_ns),
			       r->rep.st.stops, ms(r->rep.st.longest_stop_ns));
		putchar('\n');
	}
}

static struct json_object *json_ms(uint64_t ns)
{
	return json_object_new_double(ms(ns));
}

static struct json_object *injection_json(const struct lp_runtime_report *rep)
{
	struct json_object *j = json_object_new_object();

	json_object_object_add(j, "thread",
			       rep->injected ? json_object_new_int(rep->st.thread) : NULL);
	json_object_object_add(j, "where",
			       rep->injected ? json_object_new_string(rep->st.where) : NULL);
	json_object_object_add(j, "borrowed_ms",
			       rep->injected ? json_ms(rep->st.borrowed_ns) : NULL);
	json_object_object_add(j, "total_ms", rep->injected ? json_ms(rep->st.total_ns) : NULL);
	json_object_object_add(j, "threads_registered", json_object_new_uint64(rep->registered));
	json_object_object_add(j, "stops", json_object_new_int((int)rep->st.stops));
	json_object_object_add(j, "longest_stop_ms", json_ms(rep->st.longest_stop_ns));
	json_object_object_add(j, "longest_stop_tid",
			       rep->st.stops ? json_object_new_int(rep->st.longest_tid) : NULL);
	return j;
}

static int print_json(const struct result *res, size_t n)
{
	struct json_object *all = json_object_new_array();
	int ret;

	for (size_t i = 0; i < n; i++) {
		const struct result *r = &res[i];
		struct json_object *j = json_object_new_object();

		json_object_object_add(j, "pid", json_object_new_int(r->pid));
		json_object_object_add(j, "comm", json_object_new_string(r->comm));
		json_object_object_add(j, "ok", json_object_new_boolean(r->rc == 0));
		json_object_object_add(j, "message",
				       r->rc ? NULL : json_object_new_string(r->text));
		json_object_object_add(j, "error", r->rc ? json_object_new_string(r->text) : NULL);
		json_object_object_add(j, "injected", json_object_new_boolean(r->rep.injected));
		json_object_object_add(j, "runtime_injected",
				       json_object_new_boolean(r->rep.was_injected));
		json_object_object_add(
		    j, "injection",
		    r->rep.injected || r->rep.registered ? injection_json(&r->rep) : NULL);
		json_object_array_add(all, j);
	}
	ret = lp_json_print(all);
	json_object_put(all);
	return ret;
}

int lp_apply_many(const pid_t *pids, size_t n, const struct lp_apply_target *a)
{
	struct result *res =
	    mmap(NULL, n * sizeof(*res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	size_t failed = 0;
	int ret;

	if (res == MAP_FAILED) {
		lp_error("apply %s: %s", a->arg, strerror(errno));
		return LP_EXIT_FAIL;
	}
	for (size_t i = 0; i < n; i++) {
		res[i] = (struct result){.pid = pids[i]};
		lp_read_comm(pids[i], res[i].comm, sizeof(res[i].comm));
	}
	lp_pool_run(n, PARALLEL, apply_one, applied, &(struct fleet){res, a});
	for (size_t i = 0; i < n; i++)
		failed += res[i].rc != 0;
	ret = LP_EXIT_OK;
	if (a->json)
		ret = print_json(res, n);
	else if (failed || !a->quiet)
		print_table(res, n, a->verbose);
	munmap(res, n * sizeof(*res));
	if (failed) {
		fflush(stdout);
		lp_error("apply %s: failed in %zu of %zu process%s", a->arg, failed, n,
			 n == 1 ? "" : "es");
		return LP_EXIT_FAIL;
	}
	return ret;
}
