// SPDX-License-Identifier: MIT
/*
 * System states (kernel: state.c): what a patch changed in the process
 * that outlives its code, named by an id and versioned, so that a newer
 * cumulative patch can take it over and an older or unaware one is
 * refused.  Called with lp_mutex held (callbacks, enable).
 */
#include <stdio.h>

#include "runtime.h"

__attribute__((visibility("default"))) struct lp_state *lp_get_state(struct lp_patch *patch,
								     unsigned long id)
{
	for (struct lp_state *s = patch ? patch->states : NULL; s && s->id; s++)
		if (s->id == id)
			return s;
	return NULL;
}

__attribute__((visibility("default"))) struct lp_state *lp_get_prev_state(unsigned long id)
{
	struct lp_state *last = NULL, *s;
	struct lp_patch_rt *patch;

	if (!lp_transition_patch)
		return NULL;
	list_for_each_entry (patch, &lp_patches, node) {
		if (patch == lp_transition_patch)
			break;
		s = lp_get_state(patch->desc, id);
		if (s)
			last = s;
	}
	return last;
}

/*
 * Kernel: klp_is_patch_compatible().  Every state of every installed patch
 * must be in @patch at an equal or higher version; a non-replace patch may
 * leave a state out, it does not touch it.
 */
int lp_states_compatible(const struct lp_patch_rt *patch, char *err, size_t errlen)
{
	const struct lp_patch_rt *old;

	list_for_each_entry (old, &lp_patches, node) {
		for (const struct lp_state *s = old->desc->states; s && s->id; s++) {
			const struct lp_state *mine = lp_get_state(patch->desc, s->id);

			if (!mine && patch->desc->replace) {
				snprintf(
				    err, errlen,
				    "patch '%s' is not compatible with the installed patches: it "
				    "replaces them, but lacks state %lu (version %u of '%s')",
				    patch->name, s->id, s->version, old->name);
				return -1;
			}
			if (mine && mine->version < s->version) {
				snprintf(err, errlen,
					 "patch '%s' is not compatible with the installed patches: "
					 "state %lu is at version %u, below version %u of '%s'",
					 patch->name, s->id, mine->version, s->version, old->name);
				return -1;
			}
		}
	}
	return 0;
}
