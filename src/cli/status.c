// SPDX-License-Identifier: MIT
/*
 * The human form of a status answer: the process, its transition, then
 * each patch with its objects and functions, indented as the kernel's
 * /sys/kernel/livepatch/<patch>/<object>/<function> tree is nested.
 * Missing keys are skipped rather than fatal (docs/json.md).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char *plural(size_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

const char *lp_transition_verb(const char *target)
{
	if (!strcmp(target, "patched"))
		return "patching";
	if (!strcmp(target, "unpatched"))
		return "unpatching";
	return target;
}

/* "transition: 'fix' patching, 3 of 10 threads pending" */
static void render_transition(struct json_object *status)
{
	struct json_object *tr = lp_json_obj(status, "transition");

	if (!tr)
		return;
	printf("transition: '%s' %s", lp_json_str(tr, "patch", "?"),
	       lp_transition_verb(lp_json_str(tr, "target", "?")));
	/* Counts are optional: a runtime may not track them. */
	if (lp_json_int(tr, "threads_total", -1) >= 0)
		printf(", %lld of %lld threads pending", lp_json_int(tr, "threads_pending", 0),
		       lp_json_int(tr, "threads_total", 0));
	putchar('\n');
}

static void render_function(struct json_object *fn)
{
	long long sympos = lp_json_int(fn, "sympos", 0);

	/* "name,sympos" is how the kernel's sysfs names such a function. */
	printf("      %s", lp_json_str(fn, "name", "?"));
	if (sympos > 0)
		printf(",%lld", sympos);
	/* A nop of a replace patch leads back to the original. */
	printf("  %s -> %s", lp_json_str(fn, "old_addr", "-"),
	       lp_json_bool(fn, "nop", false) ? "original (nop)"
					      : lp_json_str(fn, "new_addr", "-"));
	if (lp_json_bool(fn, "transition", false))
		fputs("  (in transition)", stdout);
	else if (!lp_json_bool(fn, "patched", false))
		fputs("  (unpatched)", stdout);
	putchar('\n');
}

static void render_object(struct json_object *obj)
{
	const char *path = lp_json_str(obj, "path", NULL);
	const char *error = lp_json_str(obj, "error", NULL);
	size_t nfuncs = lp_json_len(obj, "functions");

	printf("    %s", lp_json_str(obj, "name", "<main program>"));
	if (path)
		printf(" (%s)", path);
	else if (!lp_json_bool(obj, "loaded", false))
		fputs(" (not loaded)", stdout);
	printf(" %s\n", lp_json_bool(obj, "patched", false) ? "patched" : "unpatched");
	if (error)
		printf("      %s\n", error);
	for (size_t i = 0; i < nfuncs; i++)
		render_function(lp_json_idx(obj, "functions", i));
}

static void render_patch(struct json_object *patch)
{
	size_t nobjs = lp_json_len(patch, "objects");

	printf("  %s  %s", lp_json_str(patch, "name", "?"),
	       lp_json_bool(patch, "enabled", false) ? "enabled" : "disabled");
	if (lp_json_bool(patch, "transition", false))
		fputs("  transition", stdout);
	if (lp_json_bool(patch, "forced", false))
		fputs("  forced", stdout);
	if (lp_json_bool(patch, "replace", false))
		fputs("  replace", stdout);
	printf("  stack_order=%lld", lp_json_int(patch, "stack_order", 0));
	printf("  %s\n", lp_json_str(patch, "path", "-"));
	for (size_t i = 0; i < nobjs; i++)
		render_object(lp_json_idx(patch, "objects", i));
}

/*
 * What keeps a thread from switching: the function of the transition on
 * its stack, else why the last check failed ("stack not reliable: ...").
 */
static const char *blocked_on(struct json_object *t)
{
	const char *fn = lp_json_str(t, "blocking_function", NULL);

	return fn ? fn : lp_json_str(t, "reason", "-");
}

/* One line per thread, as the kernel's /proc/PID/patch_state, and more. */
static void render_threads(struct json_object *status)
{
	size_t n = lp_json_len(status, "threads");

	printf("\n  %-8s %-16s %-10s %-8s %s\n", "TID", "NAME", "STATE", "PENDING", "BLOCKED-ON");
	for (size_t i = 0; i < n; i++) {
		struct json_object *t = lp_json_idx(status, "threads", i);
		char name[64], why[512];

		/* Thread names and reasons come from the target: keep each row one line. */
		snprintf(name, sizeof(name), "%s", lp_json_str(t, "name", "?"));
		snprintf(why, sizeof(why), "%s", blocked_on(t));
		lp_one_line(name);
		lp_one_line(why);
		printf("  %-8lld %-16s %-10s %-8s %s\n", lp_json_int(t, "tid", 0), name,
		       lp_json_str(t, "state", "?"),
		       lp_json_bool(t, "pending", false) ? "yes" : "no", why);
	}
}

void lp_status_render(struct json_object *status, pid_t pid, bool threads)
{
	size_t n = lp_json_len(status, "patches");

	if (n)
		printf("process %d: %zu %s\n", (int)pid, n, plural(n, "patch", "patches"));
	else
		printf("process %d: no patches\n", (int)pid);
	render_transition(status);
	for (size_t i = 0; i < n; i++)
		render_patch(lp_json_idx(status, "patches", i));
	if (threads)
		render_threads(status);
}
