// SPDX-License-Identifier: MIT
/*
 * Start-up of the runtime in the target process, and its continuation in a
 * forked child (which gets its own agent and keeps its patches).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

/*
 * `lpatch run` preloads the runtime into one program, not into everything
 * that program executes: take it out of LD_PRELOAD for the children.
 * Returns whether it was there: if not, the runtime was injected into a
 * running process (or loaded by it), and the environment is left alone.
 */
static bool drop_from_preload(void)
{
	const char *preload = getenv("LD_PRELOAD");
	char *copy, *kept, *tok, *save = NULL;
	bool found = false;
	size_t used = 0;
	Dl_info self;

	if (!preload || !dladdr((void *)drop_from_preload, &self) || !self.dli_fname)
		return false;
	copy = strdup(preload);
	kept = calloc(1, strlen(preload) + 1);

	if (!copy || !kept) {
		free(copy);
		free(kept);
		return strstr(preload, self.dli_fname) != NULL;
	}
	for (tok = strtok_r(copy, ": ", &save); tok; tok = strtok_r(NULL, ": ", &save)) {
		if (strcmp(tok, self.dli_fname) == 0) {
			found = true;
			continue;
		}
		used += (size_t)sprintf(kept + used, "%s%s", used ? ":" : "", tok);
	}
	if (found && used)
		setenv("LD_PRELOAD", kept, 1);
	else if (found)
		unsetenv("LD_PRELOAD");
	free(copy);
	free(kept);
	return found;
}

/*
 * No request may be half done, and no thread's flags half changed, when a
 * child is copied: the forking thread's flags then agree with the target
 * the child inherits, even when the parent reverses the transition at the
 * same time (seed 000).
 */
static void before_fork(void)
{
	lp_lock();
	lp_tasks_atfork_prepare();
	lp_shadow_atfork_prepare(); /* after lp_lock(): callbacks use shadow variables */
}

static void after_fork_parent(void)
{
	lp_shadow_atfork_parent();
	lp_tasks_atfork_parent();
	lp_unlock();
}

/* The child continues any transition with its own agent (agent_main()). */
static void after_fork_child(void)
{
	lp_shadow_atfork_child();
	lp_tasks_atfork_child();
	lp_unlock();
	lp_log_atfork_child();
	lp_agent_atfork_child();
	if (lp_agent_start() < 0)
		lp_log("cannot start the runtime in child process: %s", strerror(errno));
}

__attribute__((constructor)) static void lp_runtime_init(void)
{
	char err[LP_ERR_MAX];

	lp_injected_init(drop_from_preload());
	lp_transition_setup();
	/* An injected runtime's code writer and hooks are set up by the agent (injected.c). */
	if ((!lp_injected && lp_text_init() < 0) || lp_threads_init() < 0 || lp_tasks_init() < 0) {
		lp_log("runtime disabled: %s", strerror(errno));
		return;
	}
	/* Without the hook, a library loaded later would run unpatched: say so. */
	if (!lp_injected && lp_loader_init(err, sizeof(err)) < 0)
		lp_log("libraries loaded from now on are not patched: %s", err);
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
	if (lp_agent_start() < 0)
		lp_log("cannot start the agent: %s", strerror(errno));
}
