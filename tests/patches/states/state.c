/* SPDX-License-Identifier: MIT */
/*
 * state - cumulative patches that change a setting of the demo target, its
 * demo_loglevel (4), and record the change as system state 1, in the
 * manner of the kernel's test_klp_state modules (tests/e2e/58-states.sh).
 * Built three times: state1 (state version 1), state2 and state3 (version
 * 2).  All are replace patches and replace compute() with x * 100 + N,
 * parking in the target's park_here() for a negative x: a thread parked
 * there holds the next patch's transition open.
 *
 *   pre_patch     takes the state over from the previous patch, if any,
 *                 else allocates room for the saved setting
 *   post_patch    saves the setting and sets it to 8, unless it took over
 *   pre_unpatch   restores the setting
 *   post_unpatch  frees the saved setting; but when the previous patch
 *                 still holds the state, the transition was reversed: the
 *                 setting is the previous patch's again, it is left alone
 */
#include <lpatch.h>
#include <stdlib.h>

#define NAME	  "state" STATE_N_STR
#define LOGLEVEL  1 /* the state id */
#define TO_STR(x) #x
#define STR(x)	  TO_STR(x)
#define STATE_N_STR STR(STATE_N)

static volatile int *loglevel;
static int (*park_here)(int);

static void logf_state(const char *fn, const char *what)
{
	lp_printf(NAME ": %s: %s", fn, what);
}

static int allocate_loglevel_state(void)
{
	struct lp_state *state = lp_get_state(&lp_this_patch, LOGLEVEL);
	struct lp_state *prev = lp_get_prev_state(LOGLEVEL);

	if (!state)
		return -1;
	if (prev) {
		logf_state(__func__, "space to store the loglevel already allocated");
		state->data = prev->data;
		return 0;
	}
	logf_state(__func__, "allocating space to store the loglevel");
	state->data = malloc(sizeof(int));
	return state->data ? 0 : -1;
}

static void fix_loglevel(void)
{
	struct lp_state *state = lp_get_state(&lp_this_patch, LOGLEVEL);

	if (lp_get_prev_state(LOGLEVEL)) {
		logf_state(__func__, "taking over the loglevel change");
		return;
	}
	logf_state(__func__, "fixing the loglevel");
	*(int *)state->data = *loglevel;
	*loglevel = 8;
}

static void restore_loglevel(void)
{
	struct lp_state *state = lp_get_state(&lp_this_patch, LOGLEVEL);

	logf_state(__func__, "restoring the loglevel");
	*loglevel = *(int *)state->data;
}

static void free_loglevel_state(void)
{
	struct lp_state *state = lp_get_state(&lp_this_patch, LOGLEVEL);

	if (lp_get_prev_state(LOGLEVEL)) {
		logf_state(__func__, "transition reversed: the previous patch keeps the loglevel");
		return;
	}
	logf_state(__func__, "freeing space for the stored loglevel");
	free(state->data);
}

static int pre_patch(struct lp_object *obj)
{
	(void)obj;
	lp_printf(NAME ": pre_patch_callback: main");
	return allocate_loglevel_state();
}

static void post_patch(struct lp_object *obj)
{
	(void)obj;
	lp_printf(NAME ": post_patch_callback: main");
	fix_loglevel();
}

static void pre_unpatch(struct lp_object *obj)
{
	(void)obj;
	lp_printf(NAME ": pre_unpatch_callback: main");
	restore_loglevel();
}

static void post_unpatch(struct lp_object *obj)
{
	(void)obj;
	lp_printf(NAME ": post_unpatch_callback: main");
	free_loglevel_state();
}

static int new_compute(int x)
{
	if (x < 0)
		x = park_here(-x);
	return x * 100 + STATE_N;
}

static struct lp_func funcs[] = {
	{ .old_name = "compute", .new_func = new_compute },
	{ 0 }
};

static struct lp_symbol syms[] = {
	LP_SYMBOL("demo_loglevel", loglevel),
	LP_SYMBOL("park_here", park_here),
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL,
	  .funcs = funcs,
	  .syms = syms,
	  .callbacks = { .pre_patch = pre_patch,
			 .post_patch = post_patch,
			 .pre_unpatch = pre_unpatch,
			 .post_unpatch = post_unpatch } },
	{ 0 }
};

static struct lp_state states[] = {
	{ .id = LOGLEVEL, .version = STATE_VERSION },
	{ 0 }
};

LP_PATCH(.objs = objs, .states = states, .replace = true);
