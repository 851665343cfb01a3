/* SPDX-License-Identifier: MIT */
/*
 * The injector: loading the runtime (liblpatch.so) into a running process
 * that was started without it, so that `lpatch apply` works on any
 * dynamically linked glibc process.  One thread of the process, caught at
 * a point where it holds no lock of libc or of the loader, is made to call
 * dlopen() and put back exactly as it was; no other thread is stopped
 * except for a look at its registers.  docs/how-it-works.md, "Injection",
 * describes the rules.  Used by the CLI; needs ptrace rights on the
 * process (root, or its owner where Yama allows).
 */
#ifndef LP_INJECT_H
#define LP_INJECT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What injecting cost the process; every time is in nanoseconds. */
struct lp_inject_stats {
	pid_t thread;		  /* the thread that loaded the runtime */
	char where[48];		  /* where it was: the libc function, or "application code" */
	unsigned int stops;	  /* thread stops, all threads together */
	uint64_t longest_stop_ns; /* the longest one, from seeing it stopped to resuming it */
	pid_t longest_tid;	  /* ... of this thread */
	uint64_t borrowed_ns;	  /* the borrowed thread away from its own code */
	uint64_t total_ns;	  /* from the first look at the process to the detach */
	unsigned int attempts;	  /* threads looked at before one was at a safe point */
};

/*
 * Called once the process is known to be one the runtime can be injected
 * into, before any of its threads is stopped: non-zero, with a reason in
 * @err, gives up.
 */
typedef int (*lp_inject_ready_fn)(void *arg, char *err, size_t errlen);

/*
 * Load @runtime (an absolute path, visible at the same path to the
 * process) into process @pid with dlopen(RTLD_NOW | RTLD_GLOBAL).  Waits
 * a bounded time for a thread at a safe point.  Returns 0, or -1 with a
 * one-line reason in @err: the process is statically linked, does not use
 * glibc, exited, cannot be traced, had no thread at a safe point, the
 * loader refused the runtime (its dlerror()), or @ready (may be NULL)
 * refused.  Nothing is left changed on failure.  @st is filled in either
 * case.
 */
int lp_inject(pid_t pid, const char *runtime, lp_inject_ready_fn ready, void *arg,
	      struct lp_inject_stats *st, char *err, size_t errlen);

/* A thread of the process and the registers the runtime needs to register it. */
struct lp_thread_rec {
	pid_t tid;
	uint64_t tp; /* thread pointer (%fs base) */
	uint64_t sp; /* stack pointer */
};

/*
 * Read the thread pointer and stack pointer of every thread of @pid that
 * is not in @known (@nknown of them), stopping each for a moment; a
 * system call it was blocked in goes on as if nothing happened.  *@recs
 * (free() it) receives *@n records.  Stops are added to @st.  Returns 0, or
 * -1 with a reason in @err.
 */
int lp_inject_collect(pid_t pid, const pid_t *known, size_t nknown, struct lp_thread_rec **recs,
		      size_t *n, struct lp_inject_stats *st, char *err, size_t errlen);

/* The task whose /proc entries show @pid's memory: @pid, or a live thread once it exited. */
pid_t lp_proc_live_thread(pid_t pid);

#endif /* LP_INJECT_H */
