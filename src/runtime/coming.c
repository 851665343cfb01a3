// SPDX-License-Identifier: MIT
/*
 * Patches and the libraries that come and go while they are installed
 * (kernel: klp_module_coming() and klp_module_going()).  The loader hook
 * (loader.c) calls these with lp_mutex held: lp_module_coming() once a
 * library is mapped and before any of its code runs, lp_module_going()
 * once its destructors ran and before it is unmapped.
 *
 * A coming library gets every patch of the list that names it, in list
 * (enable) order, so the one enabled last ends on top of each function.
 * A patch being enabled only binds to libraries already alive (loader.c
 * marks them under lp_mutex), so a library that loads while a patch is
 * being enabled gets that patch exactly once, here (kernel: klp_alive,
 * the fix of seed 002).  A library that cannot take one of its patches
 * takes none: those applied before are undone, and the failure is kept
 * for `status` and for the apply waiting on that patch.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

static const char *label(const struct lp_module *mod)
{
	const char *slash = strrchr(mod->path, '/');

	return slash ? slash + 1 : mod->path;
}

/* The object of @patch for library @mod: bound to it, or free to be. */
static struct lp_object_rt *object_for(struct lp_patch_rt *patch, struct lp_module *mod, bool bound)
{
	for (size_t o = 0; o < patch->nobjs; o++) {
		struct lp_object_rt *obj = &patch->objs[o];

		if (bound ? obj->mod == mod
			  : !obj->mod && obj->name && lp_module_matches(mod, obj->name))
			return obj;
	}
	return NULL;
}

static void set_error(struct lp_object_rt *obj, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_error(struct lp_object_rt *obj, const char *fmt, ...)
{
	va_list ap;

	free(obj->error);
	va_start(ap, fmt);
	if (vasprintf(&obj->error, fmt, ap) < 0)
		obj->error = NULL;
	va_end(ap);
}

/*
 * Take patch @patch off library @mod (kernel: the body of
 * klp_cleanup_module_patches_limited()), @how its code is restored; with
 * LP_UNPATCH_GONE the library's memory is gone, callbacks would touch it.
 * @unloading: the library goes, rather than refusing a patch.
 */
static void revert_object(struct lp_patch_rt *patch, struct lp_object_rt *obj,
			  const struct lp_module *mod, enum lp_unpatch how, bool unloading)
{
	bool callbacks = how != LP_UNPATCH_GONE;

	if (callbacks && obj->patched && patch != lp_transition_patch)
		lp_pre_unpatch_callback(obj);
	lp_log("reverting patch '%s' on %slibrary '%s'", patch->name, unloading ? "unloading " : "",
	       label(mod));
	lp_unpatch_object(obj, how);
	if (callbacks)
		lp_post_unpatch_callback(obj);
	obj->pre_patch_done = false;
	lp_object_release(obj);
	if (patch == lp_transition_patch)
		lp_transition_objects_changed();
}

/* Undo the patches before @limit on library @mod, which stays loaded unpatched. */
static void undo_coming(struct lp_module *mod, const struct lp_patch_rt *limit, const char *why)
{
	struct lp_patch_rt *patch;

	list_for_each_entry (patch, &lp_patches, node) {
		struct lp_object_rt *obj;

		if (patch == limit)
			break;
		obj = object_for(patch, mod, true);
		if (!obj)
			continue;
		revert_object(patch, obj, mod, LP_UNPATCH_GOING, false);
		set_error(obj, "not patched: %s (%s)", why, label(mod));
	}
}

/* Apply @patch to coming library @mod through its object @obj. */
static int apply_coming(struct lp_patch_rt *patch, struct lp_object_rt *obj, struct lp_module *mod,
			char *err, size_t errlen)
{
	if (lp_object_bind(obj, mod, err, errlen) < 0)
		return -1;
	lp_log("applying patch '%s' to loading library '%s'", patch->name, label(mod));
	if (lp_pre_patch_callback(obj, err, errlen) < 0) {
		lp_object_release(obj);
		return -1;
	}
	if (lp_patch_object(obj, true, err, errlen) < 0) {
		lp_post_unpatch_callback(obj);
		lp_object_release(obj);
		return -1;
	}
	free(obj->error);
	obj->error = NULL;
	if (patch == lp_transition_patch)
		lp_transition_objects_changed(); /* post_patch comes at its completion */
	else
		lp_post_patch_callback(obj);
	return 0;
}

void lp_module_coming(struct lp_module *mod)
{
	char err[LP_ERR_MAX], why[LP_ERR_MAX];
	struct lp_patch_rt *patch;

	mod->coming = true;
	list_for_each_entry (patch, &lp_patches, node) {
		struct lp_object_rt *obj = object_for(patch, mod, false);

		if (!obj || apply_coming(patch, obj, mod, err, sizeof(err)) == 0)
			continue;
		lp_log("%s", err);
		lp_log("patch '%s' failed for library '%s', which stays unpatched", patch->name,
		       label(mod));
		set_error(obj, "%s (%s)", err, label(mod));
		if (patch == lp_transition_patch && !patch->coming_failure)
			patch->coming_failure = strdup(obj->error);
		snprintf(why, sizeof(why), "patch '%s' failed for this library", patch->name);
		undo_coming(mod, patch, why);
		break;
	}
	mod->coming = false;
}

/*
 * @gone: the loader unmapped the library before the runtime could tell it
 * was going (it had no symbol to watch): only the runtime's own records of
 * it are undone, without callbacks.
 */
void lp_module_going(struct lp_module *mod, bool gone)
{
	struct lp_patch_rt *patch;

	list_for_each_entry (patch, &lp_patches, node) {
		struct lp_object_rt *obj = object_for(patch, mod, true);

		if (obj) {
			if (gone)
				lp_log("'%s': library '%s' was unmapped before it could be "
				       "unpatched: its callbacks do not run",
				       patch->name, label(mod));
			revert_object(patch, obj, mod, gone ? LP_UNPATCH_GONE : LP_UNPATCH_GOING,
				      true);
		}
		for (size_t o = 0; o < patch->nobjs; o++)
			if (patch->objs[o].name && lp_module_matches(mod, patch->objs[o].name)) {
				free(patch->objs[o].error);
				patch->objs[o].error = NULL;
			}
	}
}

/* A library a patch names, loaded in another link-map namespace: never patched. */
void lp_module_foreign(const char *path, long lmid)
{
	struct lp_module probe = {.path = (char *)path};
	struct lp_patch_rt *patch;
	char ns[32];

	snprintf(ns, sizeof(ns), "%ld", lmid);
	list_for_each_entry (patch, &lp_patches, node) {
		for (size_t o = 0; o < patch->nobjs; o++) {
			struct lp_object_rt *obj = &patch->objs[o];

			if (!obj->name || !lp_module_matches(&probe, obj->name))
				continue;
			lp_log("'%s': library '%s' loaded in link-map namespace %s is not "
			       "patched: lpatch patches the default namespace only",
			       patch->name, label(&probe), ns);
			if (!obj->mod)
				set_error(obj,
					  "a copy in link-map namespace %s (%s) is not patched", ns,
					  label(&probe));
		}
	}
	free(probe.file);
}
