/* SPDX-License-Identifier: MIT */
/*
 * shadow_vars.c - the counterpart of the kernel selftest test-shadow-vars:
 * its pre_patch callback runs a fixed sequence of lp_shadow_* calls and
 * logs each call and its result to the event log, which
 * tests/e2e/78-shadow.sh compares with an exact transcript.  Addresses
 * change from run to run, so each is logged as PTRn, n in order of first
 * appearance (PTR0 is NULL).  The patch replaces no function.
 */
#include <lpatch.h>

#define ID_A 0x1234UL
#define ID_B 0x1235UL
#define ID_C 0x1236UL

#define P "shadow_vars: "

/*
 * The n of PTRn.  Each line numbers its pointers left to right, in locals
 * first: the order in which a call evaluates its arguments is unspecified.
 */
static const void *seen[32];
static int nseen = 1; /* seen[0] is NULL */

static int ptr_id(const void *p)
{
	for (int i = 0; i < nseen; i++)
		if (seen[i] == p)
			return i;
	if (nseen == (int)(sizeof(seen) / sizeof(seen[0])))
		return -1;
	seen[nseen] = p;
	return nseen++;
}

/* Three objects: only their addresses matter to the table. */
static char obj1, obj2, obj3;

static int ctor(void *obj, void *data, void *arg)
{
	int o = ptr_id(obj), d = ptr_id(data);

	lp_printf(P "ctor(obj=PTR%d, shadow_data=PTR%d, ctor_data=PTR%d)", o, d, ptr_id(arg));
	*(int *)data = *(const int *)arg;
	return 0;
}

/* Its data is freed at once, and the address may come again: it stays unnamed. */
static int ctor_fails(void *obj, void *data, void *arg)
{
	int o = ptr_id(obj);

	(void)data;
	lp_printf(P "ctor_fails(obj=PTR%d, ctor_data=PTR%d)", o, ptr_id(arg));
	return -12;
}

/*
 * free_all() visits the table in hash order, which depends on addresses:
 * while it runs the destructor only collects, and the lines come after,
 * in PTRn order.
 */
static bool collecting;
static bool collected[32];

static void dtor(void *obj, void *data)
{
	int o = ptr_id(obj);

	if (collecting && ptr_id(data) >= 0) {
		collected[ptr_id(data)] = true;
		return;
	}
	lp_printf(P "dtor(obj=PTR%d, shadow_data=PTR%d)", o, ptr_id(data));
}

/* Check a result: @want, holding @value unless NULL. */
static int expect(const int *got, const int *want, int value)
{
	if (got != want || (want && *got != value)) {
		lp_printf(P "  unexpected result: expected PTR%d", ptr_id(want));
		return -1;
	}
	if (want)
		lp_printf(P "  got expected PTR%d -> %d result", ptr_id(got), *got);
	else
		lp_printf(P "  got expected NULL result");
	return 0;
}

static int get(void *obj, unsigned long id, const int *want, int value)
{
	int *sv = lp_shadow_get(obj, id);
	int o = ptr_id(obj);

	lp_printf(P "lp_shadow_get(obj=PTR%d, id=0x%lx) = PTR%d", o, id, ptr_id(sv));
	return expect(sv, want, value);
}

static int *alloc(void *obj, unsigned long id, lp_shadow_ctor_t c, int *value)
{
	int *sv = lp_shadow_alloc(obj, id, sizeof(int), c, value);
	int o = ptr_id(obj), f = ptr_id((void *)c), d = ptr_id(value);

	lp_printf(P "lp_shadow_alloc(obj=PTR%d, id=0x%lx, size=%zu, ctor=PTR%d, ctor_data=PTR%d) = "
		    "PTR%d",
		  o, id, sizeof(int), f, d, ptr_id(sv));
	return sv;
}

static int *get_or_alloc(void *obj, unsigned long id, int *value)
{
	int *sv = lp_shadow_get_or_alloc(obj, id, sizeof(int), ctor, value);
	int o = ptr_id(obj), f = ptr_id((void *)ctor), d = ptr_id(value);

	lp_printf(P "lp_shadow_get_or_alloc(obj=PTR%d, id=0x%lx, size=%zu, ctor=PTR%d, "
		    "ctor_data=PTR%d) = PTR%d",
		  o, id, sizeof(int), f, d, ptr_id(sv));
	return sv;
}

static void shadow_free(void *obj, unsigned long id)
{
	int o = ptr_id(obj);

	lp_shadow_free(obj, id, dtor);
	lp_printf(P "lp_shadow_free(obj=PTR%d, id=0x%lx, dtor=PTR%d)", o, id, ptr_id((void *)dtor));
}

static void shadow_free_all(unsigned long id)
{
	collecting = true;
	lp_shadow_free_all(id, dtor);
	collecting = false;
	lp_printf(P "lp_shadow_free_all(id=0x%lx, dtor=PTR%d)", id, ptr_id((void *)dtor));
	for (int i = 0; i < nseen; i++) {
		if (collected[i])
			lp_printf(P "  dtor ran for shadow_data=PTR%d", i);
		collected[i] = false;
	}
}

static int values[] = { 1, 2, 3, 4, 5, 6 };

static int run_sequence(void)
{
	int *sv1, *sv2, *sv3, *sv4, *sv5, *sv6;
	int err = 0;

	/* Nothing yet. */
	err |= get(&obj1, ID_A, NULL, 0);

	/* Variables of two objects and two ids; each ctor sees its own data. */
	sv1 = alloc(&obj1, ID_A, ctor, &values[0]);
	sv2 = alloc(&obj2, ID_A, ctor, &values[1]);
	sv3 = alloc(&obj1, ID_B, ctor, &values[2]);
	err |= get(&obj1, ID_A, sv1, 1);
	err |= get(&obj2, ID_A, sv2, 2);
	err |= get(&obj1, ID_B, sv3, 3);
	err |= get(&obj2, ID_B, NULL, 0);

	/* A duplicate is refused, with a warning, and the first one stays. */
	err |= expect(alloc(&obj1, ID_A, ctor, &values[3]), NULL, 0);
	err |= get(&obj1, ID_A, sv1, 1);

	/* get_or_alloc: a new one with its ctor, then the same one without. */
	sv4 = get_or_alloc(&obj3, ID_A, &values[3]);
	err |= expect(get_or_alloc(&obj3, ID_A, &values[4]), sv4, 4);
	sv5 = get_or_alloc(&obj2, ID_B, &values[4]);
	err |= get(&obj2, ID_B, sv5, 5);

	/* A failing ctor stores nothing. */
	err |= expect(alloc(&obj3, ID_B, ctor_fails, &values[5]), NULL, 0);
	err |= get(&obj3, ID_B, NULL, 0);
	sv6 = alloc(&obj3, ID_C, NULL, NULL);
	err |= get(&obj3, ID_C, sv6, 0);

	/* free: the dtor runs, the variable is gone, the others stay. */
	shadow_free(&obj1, ID_A);
	err |= get(&obj1, ID_A, NULL, 0);
	shadow_free(&obj2, ID_A);
	err |= get(&obj2, ID_A, NULL, 0);
	shadow_free(&obj3, ID_A);
	err |= get(&obj3, ID_A, NULL, 0);
	shadow_free(&obj3, ID_A); /* not there any more: no dtor */
	err |= get(&obj1, ID_B, sv3, 3);

	/* free_all: every object's variable of that id, and no other. */
	shadow_free_all(ID_B);
	err |= get(&obj1, ID_B, NULL, 0);
	err |= get(&obj2, ID_B, NULL, 0);
	err |= get(&obj3, ID_C, sv6, 0);
	shadow_free_all(ID_C);
	err |= get(&obj3, ID_C, NULL, 0);

	lp_printf(P "%s", err ? "FAILED" : "all checks passed");
	return err;
}

static int pre_patch(struct lp_object *obj)
{
	(void)obj;
	return run_sequence() ? -1 : 0;
}

static struct lp_func funcs[] = { { 0 } };

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs, .callbacks = { .pre_patch = pre_patch } },
	{ 0 }
};

LP_PATCH(.objs = objs);
