// SPDX-License-Identifier: MIT
/*
 * `lpatch status --json`: the patch list with the kernel's sysfs attributes
 * under the same names (enabled, transition, forced, replace, stack_order,
 * per object patched).  docs/json.md documents every field.
 */
#include <dirent.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"

static json_object *json_addr(uintptr_t addr)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%#lx", (unsigned long)addr);
	return json_object_new_string(buf);
}

static json_object *json_string_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static json_object *func_json(const struct lp_func_rt *func)
{
	json_object *j = json_object_new_object();

	json_object_object_add(j, "name", json_object_new_string(func->name));
	json_object_object_add(j, "sympos", json_object_new_uint64(func->sympos));
	json_object_object_add(j, "old_addr", func->old_addr ? json_addr(func->old_addr) : NULL);
	json_object_object_add(j, "new_addr",
			       func->nop ? NULL : json_addr((uintptr_t)func->new_func));
	json_object_object_add(j, "nop", json_object_new_boolean(func->nop));
	json_object_object_add(j, "patched", json_object_new_boolean(func->patched));
	json_object_object_add(j, "transition", json_object_new_boolean(func->transition));
	return j;
}

static json_object *object_json(const struct lp_object_rt *obj)
{
	json_object *j = json_object_new_object(), *funcs = json_object_new_array();

	json_object_object_add(j, "name", json_string_or_null(obj->name));
	json_object_object_add(j, "path", json_string_or_null(obj->path));
	json_object_object_add(
	    j, "build_id",
	    obj->build_id && obj->build_id[0] ? json_object_new_string(obj->build_id) : NULL);
	json_object_object_add(j, "loaded",
			       json_object_new_boolean(obj->mod || lp_module_find(obj->name)));
	json_object_object_add(j, "patched", json_object_new_boolean(obj->patched));
	json_object_object_add(j, "error", json_string_or_null(obj->error));
	for (size_t i = 0; i < obj->nfuncs; i++)
		json_object_array_add(funcs, func_json(&obj->funcs[i]));
	json_object_object_add(j, "functions", funcs);
	return j;
}

static json_object *patch_json(const struct lp_patch_rt *patch, int order)
{
	json_object *j = json_object_new_object(), *objs = json_object_new_array();

	json_object_object_add(j, "name", json_object_new_string(patch->name));
	json_object_object_add(j, "path", json_object_new_string(patch->path));
	json_object_object_add(j, "enabled", json_object_new_boolean(patch->enabled));
	json_object_object_add(j, "transition",
			       json_object_new_boolean(patch == lp_transition_patch));
	json_object_object_add(j, "forced", json_object_new_boolean(patch->forced));
	json_object_object_add(j, "replace", json_object_new_boolean(patch->desc->replace));
	json_object_object_add(j, "stack_order", json_object_new_int(order));
	for (size_t o = 0; o < patch->nobjs; o++)
		json_object_array_add(objs, object_json(&patch->objs[o]));
	json_object_object_add(j, "objects", objs);
	return j;
}

static const char *state_name(int state)
{
	switch (state) {
	case LP_TASK_UNPATCHED:
		return "unpatched";
	case LP_TASK_PATCHED:
		return "patched";
	default:
		return "idle";
	}
}

static json_object *transition_json(void)
{
	size_t total, pending;
	json_object *j;

	if (!lp_transition_patch)
		return NULL;
	lp_transition_counts(&total, &pending);
	j = json_object_new_object();
	json_object_object_add(j, "patch", json_object_new_string(lp_transition_patch->name));
	json_object_object_add(j, "target", json_object_new_string(state_name(lp_target_state)));
	json_object_object_add(j, "threads_total", json_object_new_uint64(total));
	json_object_object_add(j, "threads_pending", json_object_new_uint64(pending));
	return j;
}

/* What the visit signal cost the threads (threads.c), for the benchmarks and monitoring. */
static json_object *stops_json(void)
{
	json_object *j = json_object_new_object();
	struct lp_stops s;

	lp_threads_stops(&s);
	json_object_object_add(j, "count", json_object_new_uint64(s.count));
	json_object_object_add(j, "longest_ns", json_object_new_uint64(s.longest_ns));
	json_object_object_add(j, "longest_cpu_ns", json_object_new_uint64(s.longest_cpu_ns));
	json_object_object_add(j, "most_at_once", json_object_new_int(s.most_at_once));
	return j;
}

/* The thread's name (comm), or NULL when it is gone. */
static json_object *thread_name(int tid)
{
	char path[64], name[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/comm", tid);
	f = fopen(path, "re");
	if (!f)
		return NULL;
	if (fgets(name, sizeof(name), f))
		name[strcspn(name, "\n")] = '\0';
	fclose(f);
	return json_object_new_string(name);
}

/*
 * A thread the registry does not know: one starting or exiting right now,
 * or one created without pthread_create().  Out of a transition no thread
 * has a state (kernel: patch_state -1), so it is idle like the others.
 */
static void unknown_thread(json_object *j)
{
	bool transition = lp_transition_patch != NULL;

	json_object_object_add(j, "state", json_object_new_string(transition ? "unknown" : "idle"));
	json_object_object_add(j, "pending", json_object_new_boolean(false));
	json_object_object_add(j, "blocking_function", NULL);
	json_object_object_add(j, "reason",
			       transition
				   ? json_object_new_string("not managed by the runtime "
							    "(not started by pthread_create(), "
							    "or starting or exiting)")
				   : NULL);
}

static json_object *thread_json(int tid)
{
	const struct lp_thread *t = lp_thread_find_tid(tid);
	json_object *j = json_object_new_object();

	json_object_object_add(j, "tid", json_object_new_int(tid));
	json_object_object_add(j, "name", thread_name(tid));
	if (!t) {
		unknown_thread(j);
		return j;
	}
	json_object_object_add(j, "state", json_object_new_string(state_name(lp_thread_state(t))));
	json_object_object_add(j, "pending",
			       json_object_new_boolean(lp_thread_pending(t) != LP_PENDING_NONE));
	json_object_object_add(j, "blocking_function", json_string_or_null(t->blocking));
	json_object_object_add(j, "reason", json_string_or_null(t->reason[0] ? t->reason : NULL));
	return j;
}

/* Every thread of the process with its patch state (kernel: /proc/PID/patch_state). */
static json_object *threads_json(void)
{
	json_object *arr = json_object_new_array();
	DIR *dir = opendir("/proc/self/task");
	struct dirent *de;

	pthread_mutex_lock(&lp_threads_lock);
	while (dir && (de = readdir(dir))) {
		if (atoi(de->d_name) > 0)
			json_object_array_add(arr, thread_json(atoi(de->d_name)));
	}
	pthread_mutex_unlock(&lp_threads_lock);
	if (dir)
		closedir(dir);
	return arr;
}

/* The status document; the caller frees it.  NULL when out of memory. */
char *lp_status_json(bool threads)
{
	json_object *root = json_object_new_object(), *patches = json_object_new_array();
	struct lp_patch_rt *patch;
	char *text;
	int order = 0;

	lp_lock();
	json_object_object_add(root, "pid", json_object_new_int(getpid()));
	json_object_object_add(root, "version", json_object_new_string(LP_VERSION));
	json_object_object_add(root, "transition", transition_json());
	list_for_each_entry (patch, &lp_patches, node)
		json_object_array_add(patches, patch_json(patch, ++order));
	json_object_object_add(root, "patches", patches);
	json_object_object_add(root, "thread_stops", stops_json());
	if (threads)
		json_object_object_add(root, "threads", threads_json());
	lp_unlock();
	text = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
	return text;
}
