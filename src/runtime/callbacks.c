// SPDX-License-Identifier: MIT
/*
 * The patch author's callbacks of one object (kernel: callbacks.h), with
 * the kernel's one rule: post_unpatch runs only for an object whose
 * pre_patch succeeded, and once.
 */
#include <stdio.h>

#include "runtime.h"

int lp_pre_patch_callback(struct lp_object_rt *obj, char *err, size_t errlen)
{
	int (*cb)(struct lp_object *) = obj->desc->callbacks.pre_patch;

	if (cb && cb(obj->desc) != 0) {
		snprintf(err, errlen, "pre-patch callback failed for object '%s'",
			 obj->name ? obj->name : "main program");
		return -1;
	}
	obj->pre_patch_done = true;
	return 0;
}

void lp_post_patch_callback(struct lp_object_rt *obj)
{
	if (obj->desc->callbacks.post_patch)
		obj->desc->callbacks.post_patch(obj->desc);
}

void lp_pre_unpatch_callback(struct lp_object_rt *obj)
{
	if (obj->desc->callbacks.pre_unpatch)
		obj->desc->callbacks.pre_unpatch(obj->desc);
}

void lp_post_unpatch_callback(struct lp_object_rt *obj)
{
	if (obj->pre_patch_done && obj->desc->callbacks.post_unpatch)
		obj->desc->callbacks.post_unpatch(obj->desc);
	obj->pre_patch_done = false;
}

/* Where a callback's object stands (lpatch.h); only callbacks ask, under lp_mutex. */
__attribute__((visibility("default"))) enum lp_object_state
lp_object_state(const struct lp_object *desc)
{
	const struct lp_patch_rt *patch;

	list_for_each_entry (patch, &lp_patches, node) {
		for (size_t o = 0; o < patch->nobjs; o++) {
			const struct lp_object_rt *obj = &patch->objs[o];

			if (obj->desc != desc)
				continue;
			if (!obj->mod)
				return LP_OBJECT_NOT_LOADED;
			if (obj->mod->coming)
				return LP_OBJECT_COMING;
			return obj->mod->going ? LP_OBJECT_GOING : LP_OBJECT_LIVE;
		}
	}
	return LP_OBJECT_NOT_LOADED;
}
