// SPDX-License-Identifier: MIT
/*
 * The forbidden ranges of a transition (src/runtime/forbidden.c): what a
 * thread must not be running when it switches, per the kernel's
 * klp_check_stack_func(), built from hand-made patch structures.
 */
#include "runtime/runtime.h"
#include "../check.h"

#include <stdlib.h>
#include <string.h>

/* forbidden.c's one outside need: the func below on its stack. */
static struct lp_func_rt *below_of[8];
static struct lp_func_rt *funcs_seen[8];
static size_t nseen;

struct lp_func_rt *lp_func_below(const struct lp_func_rt *func)
{
	for (size_t i = 0; i < nseen; i++)
		if (funcs_seen[i] == func)
			return below_of[i];
	return NULL;
}

static void set_below(struct lp_func_rt *func, struct lp_func_rt *below)
{
	funcs_seen[nseen] = func;
	below_of[nseen++] = below;
}

static struct lp_patch_rt patch1 = {.text_lo = 0x7000, .text_hi = 0x7800};
static struct lp_patch_rt patch2 = {.text_lo = 0x9000, .text_hi = 0x9400};

static struct lp_func_rt func(struct lp_patch_rt *patch, const char *name, uintptr_t old,
			      size_t old_size, uintptr_t new_addr, size_t new_size)
{
	return (struct lp_func_rt){.patch = patch,
				   .name = (char *)name,
				   .old_addr = old,
				   .old_size = old_size,
				   .new_func = (void *)new_addr,
				   .new_size = new_size,
				   .patched = true};
}

static struct lp_forbidden *build(struct lp_patch_rt *patch, struct lp_func_rt *funcs, size_t n,
				  int target)
{
	struct lp_object obj_desc = {0};
	struct lp_object_rt obj = {.desc = &obj_desc, .funcs = funcs, .nfuncs = n};

	patch->objs = &obj;
	patch->nobjs = 1;
	return lp_forbidden_build(patch, target);
}

/* The name of the range covering @addr is @want ("" for none). */
static bool name_is(const struct lp_forbidden *f, uintptr_t addr, const char *want)
{
	const struct lp_range *r = lp_forbidden_find(f, addr);

	return strcmp(r ? r->name : "", want) == 0;
}

#define CHECK_NAME(f, addr, want) CHECK(name_is(f, addr, want))

/* Patching, nothing below: the original function, [old, old + size). */
static void test_patching_original(void)
{
	struct lp_func_rt f[2] = {func(&patch2, "parse", 0x1000, 0x40, 0x9010, 0x20),
				  func(&patch2, "emit", 0x2000, 0x10, 0x9040, 0x20)};
	struct lp_forbidden *fb = build(&patch2, f, 2, LP_TASK_PATCHED);

	CHECK_EQ(fb->n, 2);
	CHECK_NAME(fb, 0x0fff, "");
	CHECK_NAME(fb, 0x1000, "parse");
	CHECK_NAME(fb, 0x103f, "parse");
	CHECK_NAME(fb, 0x1040, "");
	CHECK_NAME(fb, 0x2008, "emit");
	CHECK_NAME(fb, 0x9010, ""); /* the new code is allowed */
	free(fb);
}

/* Patching over a previous patch: its version is forbidden, not the original. */
static void test_patching_stacked(void)
{
	struct lp_func_rt prev = func(&patch1, "parse", 0x1000, 0x40, 0x7100, 0x30);
	struct lp_func_rt unsized = func(&patch1, "emit", 0x2000, 0x10, 0x7200, 0);
	struct lp_func_rt f[2] = {func(&patch2, "parse", 0x1000, 0x40, 0x9010, 0x20),
				  func(&patch2, "emit", 0x2000, 0x10, 0x9040, 0x20)};
	struct lp_forbidden *fb;

	nseen = 0;
	set_below(&f[0], &prev);
	set_below(&f[1], &unsized);
	fb = build(&patch2, f, 1, LP_TASK_PATCHED);
	CHECK_NAME(fb, 0x1000, "");
	CHECK_NAME(fb, 0x7100, "parse");
	CHECK_NAME(fb, 0x712f, "parse");
	CHECK_NAME(fb, 0x7130, "");
	free(fb);

	/* A version of unknown size stands for all of its patch's text; parse's
	 * range lies inside it and is merged into it: the first name stays. */
	fb = build(&patch2, f, 2, LP_TASK_PATCHED);
	CHECK_EQ(fb->n, 1);
	CHECK_NAME(fb, 0x7000, "emit");
	CHECK_NAME(fb, 0x7100, "emit");
	CHECK_NAME(fb, 0x77ff, "emit");
	CHECK_NAME(fb, 0x7800, "");
	free(fb);

	/* A nop below runs the original code: the original is forbidden. */
	prev.nop = true;
	nseen = 0;
	set_below(&f[0], &prev);
	fb = build(&patch2, f, 1, LP_TASK_PATCHED);
	CHECK_NAME(fb, 0x1010, "parse");
	CHECK_NAME(fb, 0x7110, "");
	free(fb);
	nseen = 0;
}

/* Unpatching: the patch's own new functions; nops and unpatched funcs add nothing. */
static void test_unpatching(void)
{
	struct lp_func_rt f[3] = {func(&patch2, "parse", 0x1000, 0x40, 0x9010, 0x20),
				  func(&patch2, "emit", 0x2000, 0x10, 0, 0),
				  func(&patch2, "gone", 0x3000, 0x10, 0x9100, 0x10)};
	struct lp_forbidden *fb;

	f[1].nop = true;
	f[2].patched = false;
	fb = build(&patch2, f, 3, LP_TASK_UNPATCHED);
	CHECK_EQ(fb->n, 1);
	CHECK_NAME(fb, 0x9010, "parse");
	CHECK_NAME(fb, 0x902f, "parse");
	CHECK_NAME(fb, 0x9030, "");
	CHECK_NAME(fb, 0x1000, "");
	CHECK_NAME(fb, 0x9100, "");
	free(fb);
}

/* Many ranges: the binary search finds each, and nothing between them. */
static void test_many(void)
{
	struct lp_func_rt f[64];
	struct lp_forbidden *fb;

	for (size_t i = 0; i < 64; i++)
		f[63 - i] = func(&patch2, "f", 0x10000 + i * 0x100, 0x80, 0x9000, 0x10);
	fb = build(&patch2, f, 64, LP_TASK_PATCHED);
	CHECK_EQ(fb->n, 64);
	for (size_t i = 0; i < 64; i++) {
		CHECK(lp_forbidden_find(fb, 0x10000 + i * 0x100) != NULL);
		CHECK(lp_forbidden_find(fb, 0x1007f + i * 0x100) != NULL);
		CHECK(lp_forbidden_find(fb, 0x10080 + i * 0x100) == NULL);
	}
	free(fb);
}

int main(void)
{
	test_patching_original();
	test_patching_stacked();
	test_unpatching();
	test_many();
	return CHECK_DONE();
}
