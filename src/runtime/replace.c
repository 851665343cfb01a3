// SPDX-License-Identifier: MIT
/*
 * Atomic replace (kernel: klp_add_nops(), klp_unpatch_replaced_patches(),
 * klp_discard_nops()).  A patch with `replace` takes the place of every
 * patch installed before it, in one transition: for each function an
 * installed patch changes and the new one does not, the new patch gets a
 * nop, a function that runs the original code.  So during the transition
 * every such function is in it too: a thread not switched yet runs the old
 * patch's version, a switched one the original, and the old version is
 * forbidden code like any other (forbidden.c).  When the transition
 * completes the replaced patches are unpatched without their callbacks and
 * the nops go; functions that no patch changes any more run the original
 * code again.  Everything here runs under lp_mutex.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

/* Kernel: klp_find_func(): same name, and sympos 0 and 1 both mean the first. */
static bool same_func(const struct lp_func_rt *a, const struct lp_func_rt *b)
{
	unsigned long x = a->sympos ? a->sympos : 1, y = b->sympos ? b->sympos : 1;

	return strcmp(a->name, b->name) == 0 && x == y;
}

static bool same_name(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static struct lp_object_rt *find_object(struct lp_patch_rt *patch, const char *name)
{
	for (size_t o = 0; o < patch->nobjs; o++)
		if (same_name(patch->objs[o].name, name))
			return &patch->objs[o];
	return NULL;
}

/* An object only nops live in: the new patch does not name that library. */
static struct lp_object_rt *add_object(struct lp_patch_rt *patch, const char *name)
{
	struct lp_object_rt *objs = reallocarray(patch->objs, patch->nobjs + 1, sizeof(*objs));
	struct lp_object_rt *obj;

	if (!objs)
		return NULL;
	patch->objs = objs;
	obj = &objs[patch->nobjs];
	*obj = (struct lp_object_rt){.patch = patch, .dynamic = true};
	obj->desc = calloc(1, sizeof(*obj->desc));
	obj->name = name ? strdup(name) : NULL;
	if (!obj->desc || (name && !obj->name)) {
		free(obj->desc);
		free(obj->name);
		return NULL;
	}
	obj->desc->name = obj->name;
	patch->nobjs++;
	return obj;
}

static int add_nop(struct lp_object_rt *obj, const struct lp_func_rt *old)
{
	struct lp_func_rt *funcs, *nop;

	for (size_t i = 0; i < obj->nfuncs; i++)
		if (same_func(&obj->funcs[i], old))
			return 0; /* the patch has it, or a nop for it already */
	funcs = reallocarray(obj->funcs, obj->nfuncs + 1, sizeof(*funcs));
	if (!funcs)
		return -1;
	obj->funcs = funcs;
	nop = &funcs[obj->nfuncs];
	*nop = (struct lp_func_rt){.patch = obj->patch, .sympos = old->sympos, .nop = true};
	nop->name = strdup(old->name);
	if (!nop->name)
		return -1;
	obj->nfuncs++;
	/* The array moved: no entry is on a func_stack yet, their nodes start afresh. */
	for (size_t i = 0; i < obj->nfuncs; i++)
		list_init(&obj->funcs[i].stack_node);
	return 0;
}

/*
 * Give @patch a nop for every function of every installed patch that it
 * lacks.  Before @patch is bound or enabled: arrays may still move.
 */
int lp_add_nops(struct lp_patch_rt *patch)
{
	struct lp_patch_rt *old;

	list_for_each_entry (old, &lp_patches, node) {
		for (size_t o = 0; o < old->nobjs; o++) {
			const struct lp_object_rt *old_obj = &old->objs[o];

			for (size_t i = 0; i < old_obj->nfuncs; i++) {
				struct lp_object_rt *obj = find_object(patch, old_obj->name);

				if (old_obj->funcs[i].nop)
					continue;
				if (!obj && !(obj = add_object(patch, old_obj->name)))
					return -1;
				if (add_nop(obj, &old_obj->funcs[i]) < 0)
					return -1;
			}
		}
	}
	return 0;
}

/* Kernel: klp_unpatch_replaced_patches(): no callbacks, the new patch took over. */
void lp_unpatch_replaced(const struct lp_patch_rt *patch)
{
	struct lp_patch_rt *old;

	list_for_each_entry (old, &lp_patches, node) {
		if (old == patch)
			break;
		old->enabled = false;
		for (size_t o = 0; o < old->nobjs; o++)
			lp_unpatch_object(&old->objs[o], LP_UNPATCH_LIVE);
	}
}

static void free_func(struct lp_func_rt *func)
{
	free(func->name);
}

/* Kernel: klp_discard_nops(): the replaced patches are gone, so are their nops. */
void lp_discard_nops(struct lp_patch_rt *patch)
{
	for (size_t o = patch->nobjs; o-- > 0;) {
		struct lp_object_rt *obj = &patch->objs[o];
		size_t kept = obj->nfuncs;

		while (kept > 0 && obj->funcs[kept - 1].nop)
			kept--;
		for (size_t i = kept; i < obj->nfuncs; i++) {
			struct lp_func_rt *nop = &obj->funcs[i];

			if (nop->patched)
				lp_unpatch_func(nop);
			free_func(nop);
		}
		obj->nfuncs = kept;
		if (!obj->dynamic)
			continue;
		/* Dynamic objects come last: drop them from the end. */
		lp_object_release(obj);
		free(obj->funcs);
		free(obj->name);
		free(obj->error);
		free(obj->desc);
		patch->nobjs--;
	}
}
