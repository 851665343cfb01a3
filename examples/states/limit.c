// SPDX-License-Identifier: MIT
/*
 * limit_v1 and limit_v2 (LIMIT_V2 defined): cumulative patches for
 * examples/states/limits.c that raise max_clients from its original value
 * to 400 and record that as system state 1, with the original value in
 * the state's data.  limit_v2 also fixes greeting().
 *
 * The callbacks follow the rules of states (docs/writing-patches.md):
 *   pre_patch     take the state over when an installed patch holds it
 *                 (lp_get_prev_state()), else make room to save the setting
 *   post_patch    raise the setting, unless it was taken over (raised already)
 *   pre_unpatch   put the original value back
 *   post_unpatch  free the saved value, unless the transition was reversed
 *                 and the previous patch, still installed, owns it again
 */
#include <lpatch.h>
#include <stdlib.h>

#ifdef LIMIT_V2
#define NAME "limit_v2"
#else
#define NAME "limit_v1"
#endif
#define MAX_CLIENTS_STATE 1

static int *max_clients;

static struct lp_state *my_state(void)
{
	return lp_get_state(&lp_this_patch, MAX_CLIENTS_STATE);
}

static int pre_patch(struct lp_object *obj)
{
	struct lp_state *prev = lp_get_prev_state(MAX_CLIENTS_STATE);

	(void)obj;
	if (prev) {
		my_state()->data = prev->data;
		lp_printf(NAME ": taking over max_clients from the installed patch");
		return 0;
	}
	my_state()->data = malloc(sizeof(int));
	return my_state()->data ? 0 : -1;
}

static void post_patch(struct lp_object *obj)
{
	(void)obj;
	if (lp_get_prev_state(MAX_CLIENTS_STATE))
		return;
	*(int *)my_state()->data = *max_clients;
	*max_clients = 400;
	lp_printf(NAME ": max_clients raised to 400");
}

static void pre_unpatch(struct lp_object *obj)
{
	(void)obj;
	*max_clients = *(int *)my_state()->data;
	lp_printf(NAME ": max_clients back to %d", *max_clients);
}

static void post_unpatch(struct lp_object *obj)
{
	(void)obj;
	if (lp_get_prev_state(MAX_CLIENTS_STATE))
		return; /* reversed: the previous patch keeps the setting */
	free(my_state()->data);
}

#ifdef LIMIT_V2
static int *formal;

/* greeting()'s callers may count on the registers it leaves alone. */
static LP_PRESERVE_REGISTERS const char *fixed_greeting(void)
{
	return *formal ? "Welcome" : "Hi";
}

static struct lp_func funcs[] = {
	{ .old_name = "greeting", .new_func = fixed_greeting },
	{ 0 }
};
#else
static struct lp_func funcs[] = { { 0 } };
#endif

static struct lp_symbol syms[] = {
	LP_SYMBOL("max_clients", max_clients),
#ifdef LIMIT_V2
	LP_SYMBOL("formal", formal),
#endif
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
	{ .id = MAX_CLIENTS_STATE, .version = 1 },
	{ 0 }
};

LP_PATCH(.objs = objs, .states = states, .replace = true);
