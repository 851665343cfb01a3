// SPDX-License-Identifier: MIT
/*
 * A runtime that came into a running process by dlopen(), from one of its
 * threads the injector (src/inject) borrowed, instead of by LD_PRELOAD at
 * start-up.  Two things differ, and both are settled here:
 *
 *   - the program calls libc's pthread_create() itself, not the runtime's:
 *     the agent redirects libc's to the runtime's wrapper (task.c) before
 *     it serves any request;
 *   - the threads that were running already are unknown to the registry.
 *     Their lp_current lies at a fixed offset from their thread pointer,
 *     which only ptrace can read without disturbing them (a signal would
 *     end their nanosleep() or epoll_wait() with EINTR).  The injector
 *     traces the process anyway: it reads them and hands them over
 *     ("adopt"), after asking which threads are registered ("runtime").
 *
 * The constructor returns at once: the borrowed thread belongs to the
 * program.  The agent waits until the injector has let that thread go
 * before it writes the redirect: a thread still traced by the injector,
 * with every signal blocked, could be neither visited nor stopped.  A
 * failure there leaves a runtime that cannot write code (a patch is then
 * refused); "runtime" says why.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

#define RELEASE_WAIT_MS 2000

bool lp_injected;
static pid_t borrowed;
static bool set_up;
static char hook_error[LP_ERR_MAX];

void lp_injected_init(bool preloaded)
{
	lp_injected = !preloaded;
	borrowed = lp_self_tid();
}

/* Is thread @tid traced?  False once it is gone. */
static bool traced(pid_t tid)
{
	char path[64], buf[2048];
	const char *at;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	at = strstr(buf, "\nTracerPid:");
	return at && atoi(at + strlen("\nTracerPid:")) != 0;
}

/* The injector detaches a moment after dlopen() returns. */
static void wait_released(void)
{
	struct timespec pause = {0, 100 * 1000};

	for (int waited_us = 0; traced(borrowed) && waited_us < RELEASE_WAIT_MS * 1000;
	     waited_us += (int)(pause.tv_nsec / 1000)) {
		nanosleep(&pause, NULL);
		if (pause.tv_nsec < 1000 * 1000)
			pause.tv_nsec *= 2;
	}
}

/*
 * In the agent, before it serves anything (and not again in a forked
 * child).  The code writer is set up here rather than in the constructor
 * (registering for membarrier() waits for an RCU grace period in a process
 * with several threads, milliseconds the borrowed thread would be away),
 * and so are the loader hook and the pthread_create() redirect, whose
 * writes visit every thread.  lp_mutex keeps fork() out until the code
 * writer is there.
 */
void lp_injected_setup(void)
{
	char err[LP_ERR_MAX];
	int ret;

	if (!lp_injected || set_up)
		return;
	wait_released();
	lp_lock();
	set_up = true;
	ret = lp_text_init();
	lp_unlock();
	if (ret < 0) {
		snprintf(hook_error, sizeof(hook_error), "cannot set up the code writer: %s",
			 strerror(errno));
		lp_log("%s", hook_error);
		return;
	}
	/* Without the hook, a library loaded later would run unpatched: say so. */
	if (lp_loader_init(err, sizeof(err)) < 0)
		lp_log("libraries loaded from now on are not patched: %s", err);
	else
		lp_loader_watch_earlier();
	if (lp_tasks_hook_create(hook_error, sizeof(hook_error)) < 0)
		lp_log("cannot catch the threads the program creates: %s", hook_error);
}

/* "runtime": how the runtime came, and the threads it knows. */
char *lp_injected_info(void)
{
	json_object *root = json_object_new_object(), *tids = json_object_new_array();
	struct lp_thread *t;
	char *text;

	json_object_object_add(root, "injected", json_object_new_boolean(lp_injected));
	json_object_object_add(root, "hook_error",
			       hook_error[0] ? json_object_new_string(hook_error) : NULL);
	pthread_mutex_lock(&lp_threads_lock);
	list_for_each_entry (t, &lp_thread_list, node)
		if (t->task)
			json_object_array_add(tids, json_object_new_int(t->tid));
	pthread_mutex_unlock(&lp_threads_lock);
	json_object_object_add(root, "threads", tids);
	text = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
	json_object_put(root);
	return text;
}

/* glibc's thread control block starts with a pointer to itself. */
static bool is_tcb(uintptr_t tp)
{
	uintptr_t word = 0;
	struct iovec local = {&word, sizeof(word)}, remote = {(void *)tp, sizeof(word)};

	return process_vm_readv(lp_self_tid(), &local, 1, &remote, 1, 0) == sizeof(word) &&
	       word == tp;
}

/*
 * The stack of a thread whose stack pointer is @sp: the mapping holding it.
 * The main thread's grows down to the stack limit, as pthread_getattr_np()
 * tells its own, but not into the mapping below.
 */
static bool stack_of(uintptr_t sp, uintptr_t *lo, uintptr_t *hi)
{
	FILE *f = fopen("/proc/self/maps", "re");
	unsigned long a, b, prev_end = 0;
	char line[512], name[64];
	struct rlimit rl;
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		name[0] = '\0';
		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %63s", &a, &b, name) < 2)
			continue;
		if (sp >= a && sp < b) {
			*lo = a;
			*hi = b;
			found = true;
			if (strcmp(name, "[stack]") == 0 && getrlimit(RLIMIT_STACK, &rl) == 0 &&
			    rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < b)
				*lo = b - rl.rlim_cur > prev_end ? b - rl.rlim_cur : prev_end;
		}
		prev_end = b;
	}
	fclose(f);
	return found;
}

/* One "TID:TP:SP" record; 1 registered, 0 known already, -1 refused. */
static int adopt_one(const char *rec, char *why, size_t len)
{
	unsigned long tp, sp, lo, hi;
	int tid, ret;

	if (sscanf(rec, "%d:%lx:%lx", &tid, &tp, &sp) != 3 || tid <= 0) {
		snprintf(why, len, "malformed record '%.32s'", rec);
		return -1;
	}
	if (lp_thread_gone(0, tid))
		return 0; /* exited meanwhile: nothing to register */
	if (!is_tcb(tp)) {
		snprintf(why, len, "thread %d: %#lx is not a thread pointer", tid, tp);
		return -1;
	}
	if (!stack_of(sp, &lo, &hi)) {
		snprintf(why, len, "thread %d: no stack at %#lx", tid, sp);
		return -1;
	}
	ret = lp_task_adopt(tid, tp, lo, hi);
	if (ret < 0)
		snprintf(why, len, "out of memory");
	return ret;
}

/*
 * "adopt": register the threads of @records ("TID:TP:SP,...", hexadecimal
 * pointers).  Returns 0 with a summary in @msg, or -EINVAL with the first
 * refusal.
 */
int lp_injected_adopt(char *records, char *msg, size_t len)
{
	char *rec, *save = NULL, why[128] = "";
	size_t added = 0, refused = 0;

	lp_lock();
	for (rec = strtok_r(records, ",", &save); rec; rec = strtok_r(NULL, ",", &save)) {
		char this_why[128];
		int ret = adopt_one(rec, this_why, sizeof(this_why));

		added += ret > 0;
		if (ret < 0 && !refused++)
			snprintf(why, sizeof(why), "%s", this_why);
	}
	lp_unlock();
	if (added)
		lp_log("registered %zu thread%s that ran before the runtime came", added,
		       added == 1 ? "" : "s");
	if (refused) {
		lp_log("could not register %zu thread%s: %s", refused, refused == 1 ? "" : "s",
		       why);
		snprintf(msg, len, "%zu thread%s not registered: %s", refused,
			 refused == 1 ? "" : "s", why);
		return -EINVAL;
	}
	snprintf(msg, len, "%zu thread%s registered", added, added == 1 ? "" : "s");
	return 0;
}
