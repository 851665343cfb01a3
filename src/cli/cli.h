/* SPDX-License-Identifier: MIT */
/*
 * Internal interfaces of the lpatch command.  The command is a client only:
 * every piece of patch state lives in the target process, so each
 * subcommand turns its arguments into one request to the runtime's agent
 * (apply and revert add a few while they wait) and renders the answer.
 */
#ifndef LP_CLI_H
#define LP_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include <json-c/json.h>

#include "common/err.h"
#include "inject/inject.h"
#include "protocol/protocol.h"

/* Room for a one-line reason. */
#define LP_ERR_LEN 512

/* Exit codes, documented in docs/cli.md. */
enum {
	LP_EXIT_OK = 0,
	LP_EXIT_FAIL = 1,
	LP_EXIT_USAGE = 2,
};

/*
 * Default seconds apply and revert wait for a transition, as kpatch does
 * for the kernel's: threads that have not switched after a quarter of it
 * are signalled, and at the end an apply is reversed.
 */
#define LP_DEFAULT_TIMEOUT 60

/* Each subcommand: argv[0] is the subcommand's name.  Returns an exit code. */
int lp_cmd_run(int argc, char **argv);
int lp_cmd_apply(int argc, char **argv);
int lp_cmd_revert(int argc, char **argv);
int lp_cmd_force(int argc, char **argv);
int lp_cmd_signal(int argc, char **argv);
int lp_cmd_status(int argc, char **argv);
int lp_cmd_log(int argc, char **argv);
int lp_cmd_list(int argc, char **argv);

/* report.c: every error is one line on stderr starting with "lpatch: ". */
void lp_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print a usage error and return LP_EXIT_USAGE. */
int lp_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The command name of @pid, "?" when it cannot be read. */
void lp_read_comm(pid_t pid, char *comm, size_t size);
void lp_print_help(FILE *out);
/* Flatten text from the runtime to one line (control characters to spaces). */
void lp_one_line(char *s);

/* args.c: argument parsing shared by the subcommands. */
int lp_bad_option(const char *cmd, char **argv, int c);
int lp_parse_pid(const char *text, pid_t *pid);
int lp_parse_seconds(const char *text, int *seconds);
int lp_expect_args(const char *cmd, int have, int want, const char *names);
void lp_sort_pids(pid_t *pids, size_t n);

/* request.c: one request to a process's agent. */
enum {
	LP_REQ_PROGRESS = 1 << 0, /* print PROGRESS messages on stderr */
	LP_REQ_VERBOSE = 1 << 1,  /* ... with the time since the request */
	LP_REQ_PROBE = 1 << 2,	  /* say nothing when the process is unreachable */
	LP_REQ_SILENT = 1 << 3,	  /* say nothing on any failure: the caller copes */
};

struct lp_request {
	pid_t pid;
	const char *words[LP_PROTO_MAX_ARGS]; /* verb, then its arguments */
	int nwords;
	int fd;			 /* descriptor passed along, or -1 */
	int timeout;		 /* seconds to wait for the RESULT; 0: forever */
	const char *waiting_for; /* what a timeout was waiting for */
	const char *what;	 /* context of a failure: "apply fix.so to 1234" */
	unsigned int flags;	 /* LP_REQ_* */
};

/* What went wrong, for callers that react differently (list). */
enum lp_req_status {
	LP_REQ_OK = 0,
	LP_REQ_UNREACHABLE, /* no such process or runtime, an impostor, or it went away */
	LP_REQ_REFUSED,	    /* the runtime answered with a failure */
	LP_REQ_ERROR,	    /* anything else: timeout, protocol, memory */
	LP_REQ_TIMEOUT,	    /* lp_call_wait() only: the deadline passed; nothing said */
};

/*
 * Send @req and wait for its RESULT.  On LP_REQ_OK *answer holds the
 * RESULT's payload (NUL-terminated, free() it); otherwise the error has
 * been printed (unreachable ones not with LP_REQ_PROBE) and *answer is NULL.
 */
enum lp_req_status lp_request(const struct lp_request *req, char **answer);

/* Append a word to @req; false when there is no room left. */
bool lp_request_add(struct lp_request *req, const char *word);

/* Is @pid a process (not a thread, not gone)?  Else the error is printed. */
int lp_check_process(pid_t pid);

/*
 * The steps of lp_request(), for callers that act while they wait (the
 * transitions of apply and revert).  Errors are printed as lp_request()
 * prints them, except a timeout and a refusal, which are the caller's.
 */
struct lp_call {
	const struct lp_request *req;
	int sock;
	struct timespec start; /* when the request was sent */
	/* Optional: sees each PROGRESS text after it is shown. */
	void (*on_progress)(struct lp_call *call, const char *text);
};

/* A RESULT: its code (0 or an errno value) and its text (owned). */
struct lp_result {
	int code;
	char *text;
};

/* Check the process, connect and send; lp_call_end() even on failure. */
enum lp_req_status lp_call_start(struct lp_call *call, const struct lp_request *req);
/*
 * Relay PROGRESS messages until the RESULT arrives (LP_REQ_OK, @res
 * filled, whatever its code) or @until seconds since the request was sent
 * pass (LP_REQ_TIMEOUT; < 0 waits forever).
 */
enum lp_req_status lp_call_wait(struct lp_call *call, double until, struct lp_result *res);
double lp_call_elapsed(const struct lp_call *call);
/* A line shown with the progress (on a terminal, or with --verbose). */
void lp_call_note(const struct lp_call *call, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Report that the wait timed out after @seconds; returns LP_REQ_ERROR. */
enum lp_req_status lp_call_timed_out(const struct lp_call *call, int seconds);
/*
 * What lp_request() makes of a wait's @st and @res: a failing RESULT is
 * reported (LP_REQ_REFUSED), a successful one's text moves to *answer.
 * @res is released either way.
 */
enum lp_req_status lp_call_outcome(const struct lp_call *call, enum lp_req_status st,
				   struct lp_result *res, char **answer);
void lp_call_end(struct lp_call *call);

/* wait.c: the wait for the transition that apply or revert starts. */
struct lp_wait {
	const char *target; /* "patched" (apply) or "unpatched" (revert) */
	const char *name;   /* the patch, when known before the answer (revert) */
	bool reverse;	    /* at the timeout, reverse the transition (apply) */
};

/*
 * Send @req and wait for its RESULT like lp_request(), signalling the
 * threads that have not switched after a quarter of req->timeout and
 * giving up at its end, as @how says: the failure is reported in one line.
 */
enum lp_req_status lp_wait_transition(const struct lp_request *req, const struct lp_wait *how,
				      char **answer);

/* run.c: the runtime `run` preloads and `apply` injects. */
const char *lp_runtime_path(char *buf, size_t size);

/* ensure.c: a runtime in the process, and every thread known to it. */
struct lp_runtime_report {
	unsigned int flags; /* LP_REQ_VERBOSE: say what was done, on stderr */
	bool injected;	    /* injected now */
	bool was_injected;  /* the runtime came by injection, now or before */
	size_t registered;  /* threads handed over to it */
	struct lp_inject_stats st;
};
/*
 * Before a runtime is injected for the patch @patch_fd, the patch must fit
 * the process.  0, or -1 with the error printed ("@what: ...").
 */
int lp_ensure_runtime(pid_t pid, const char *what, int patch_fd, struct lp_runtime_report *rep);

/* patchinfo.c: the objects a patch file names, read without loading it. */
struct lp_patch_names {
	char **names;
	unsigned long *sympos;
	size_t n;
};
struct lp_patch_object {
	char *name;	/* NULL: the main program */
	char *build_id; /* NULL when not pinned */
	struct lp_patch_names funcs, syms;
};
struct lp_patch_info {
	struct lp_patch_object *objs;
	size_t nobjs;
};
int lp_patch_info_read(int fd, struct lp_patch_info *pi, char *err, size_t errlen);
void lp_patch_info_free(struct lp_patch_info *pi);

/* select.c: `apply --all`: the processes that map one of a patch's objects. */
int lp_select_processes(const struct lp_patch_info *pi, pid_t **pids, size_t *n, char *err,
			size_t errlen);
/* -1 with @why when an object of @pi is in @pid but not as the patch wants it. */
int lp_patch_fits(const struct lp_patch_info *pi, pid_t pid, char *why, size_t len);

/*
 * pool.c: @fn(i, @arg) for each i < @n, each in a child process of its own,
 * at most @parallel at a time; its value is the child's exit status.  As
 * each child ends, @done(i, what it wrote on stdout, on stderr, its wait
 * status or -1 when it could not run, @arg) runs in this process.
 */
typedef int (*lp_pool_fn)(size_t i, void *arg);
typedef void (*lp_pool_done_fn)(size_t i, const char *out, const char *err, int status, void *arg);
void lp_pool_run(size_t n, size_t parallel, lp_pool_fn fn, lp_pool_done_fn done, void *arg);

/* fleet.c: one apply to many processes at once, and its table. */
struct lp_apply_target {
	int patch_fd;
	const char *path; /* absolute, sent to the runtime */
	const char *arg;  /* as the user named it */
	int timeout;
	bool no_wait;
	bool verbose;
	bool quiet; /* no table when every apply succeeded */
	bool json;
};
int lp_apply_one(pid_t pid, const struct lp_apply_target *a, unsigned int flags, bool quiet,
		 struct lp_runtime_report *rep);
int lp_apply_many(const pid_t *pids, size_t n, const struct lp_apply_target *a);

/* jsonutil.c: tolerant accessors; a missing or mistyped key gives @def. */
const char *lp_json_str(struct json_object *obj, const char *key, const char *def);
long long lp_json_int(struct json_object *obj, const char *key, long long def);
bool lp_json_bool(struct json_object *obj, const char *key, bool def);
struct json_object *lp_json_obj(struct json_object *obj, const char *key);
size_t lp_json_len(struct json_object *obj, const char *key);
struct json_object *lp_json_idx(struct json_object *obj, const char *key, size_t i);
int lp_json_print(struct json_object *obj);

/* status.c: the human form of a status answer. */
void lp_status_render(struct json_object *status, pid_t pid, bool threads);
/* "patching" for the target "patched", "unpatching" for "unpatched". */
const char *lp_transition_verb(const char *target);

/* status query shared by the status and list commands and wait.c. */
enum lp_req_status lp_query_status(pid_t pid, bool threads, unsigned int flags, int timeout,
				   struct json_object **status);

#endif /* LP_CLI_H */
