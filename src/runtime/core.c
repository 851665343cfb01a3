// SPDX-License-Identifier: MIT
/*
 * The patch list (kernel: core.c): loading a patch file, checking its
 * descriptor, enabling and disabling it, and unloading it once no thread
 * can be running its code.
 *
 * Lock order: the loader's lock before lp_mutex, never the other way, so
 * dlopen() and dlclose() of patch files happen outside lp_mutex.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elf/lp_elf.h"
#include "runtime.h"

pthread_mutex_t lp_mutex = PTHREAD_MUTEX_INITIALIZER;
struct list_head lp_patches = LIST_HEAD_INIT(lp_patches);

/* Whether this thread holds lp_mutex: the loader hook must not wait for it then. */
static __thread bool holding __attribute__((tls_model("initial-exec")));

void lp_lock(void)
{
	pthread_mutex_lock(&lp_mutex);
	holding = true;
}

void lp_unlock(void)
{
	holding = false;
	pthread_mutex_unlock(&lp_mutex);
}

bool lp_locked_by_me(void)
{
	return holding;
}

/* Disabled patches whose code may still be on some thread's stack. */
static struct list_head retired = LIST_HEAD_INIT(retired);

static struct lp_patch_rt *find_patch(const char *name)
{
	struct lp_patch_rt *patch;

	list_for_each_entry (patch, &lp_patches, node)
		if (strcmp(patch->name, name) == 0)
			return patch;
	return NULL;
}

/* Only root or the owner of the process may have written what it runs. */
static int check_file(int fd, const char *path, char *err, size_t errlen)
{
	char why[LP_ERR_MAX];
	struct stat st;

	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		return -1;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen, "%s is writable by %s: refusing to load it", path,
			 (st.st_mode & S_IWOTH) ? "others" : "its group");
		return -1;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		snprintf(err, errlen,
			 "%s is owned by uid %u, neither root nor the process's "
			 "owner (uid %u)",
			 path, st.st_uid, geteuid());
		return -1;
	}
	if (lp_elf_check_patch_file(fd, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: %s", path, why);
		return -1;
	}
	return 0;
}

static int name_from_path(const char *path, char *name, char *err, size_t errlen)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t len = strlen(base);

	if (len > 3 && strcmp(base + len - 3, ".so") == 0)
		len -= 3;
	if (len == 0 || len >= LP_NAME_MAX) {
		snprintf(err, errlen, "cannot name a patch after '%s'", base);
		return -1;
	}
	memcpy(name, base, len);
	name[len] = '\0';
	return 0;
}

static int validate_funcs(const struct lp_object *obj, size_t *nfuncs, char *err, size_t errlen)
{
	const struct lp_func *f;

	for (f = obj->funcs; f->old_name; f++) {
		if (!f->new_func) {
			snprintf(err, errlen, "function '%s' has no new_func", f->old_name);
			return -1;
		}
	}
	*nfuncs = (size_t)(f - obj->funcs);
	return 0;
}

/* The descriptor is the patch author's: check everything before use. */
static int validate(const struct lp_patch *desc, char *err, size_t errlen)
{
	const struct lp_object *obj;

	if (desc->abi != LP_ABI_VERSION) {
		snprintf(err, errlen, "descriptor ABI version %u, this runtime supports %u",
			 desc->abi, (unsigned int)LP_ABI_VERSION);
		return -1;
	}
	if (!desc->objs || (!desc->objs[0].funcs && !desc->objs[0].name)) {
		snprintf(err, errlen, "the patch has no objects");
		return -1;
	}
	for (obj = desc->objs; obj->funcs || obj->name; obj++) {
		size_t n;

		if (!obj->funcs) {
			snprintf(err, errlen, "object '%s' has no funcs array", obj->name);
			return -1;
		}
		if (validate_funcs(obj, &n, err, errlen) < 0)
			return -1;
		for (const struct lp_object *o = desc->objs; o < obj; o++) {
			if ((!o->name && !obj->name) ||
			    (o->name && obj->name && strcmp(o->name, obj->name) == 0)) {
				snprintf(err, errlen, "object '%s' appears twice",
					 obj->name ? obj->name : "(main program)");
				return -1;
			}
		}
	}
	for (const struct lp_state *s = desc->states; s && s->id; s++)
		for (const struct lp_state *t = desc->states; t < s; t++)
			if (t->id == s->id) {
				snprintf(err, errlen, "state id %lu appears twice", s->id);
				return -1;
			}
	return 0;
}

static void free_patch(struct lp_patch_rt *patch)
{
	for (size_t o = 0; o < patch->nobjs; o++) {
		struct lp_object_rt *obj = &patch->objs[o];

		lp_object_release(obj);
		for (size_t i = 0; i < obj->nfuncs; i++)
			free(obj->funcs[i].name);
		free(obj->funcs);
		free(obj->name);
		free(obj->error);
		if (obj->dynamic)
			free(obj->desc);
	}
	free(patch->objs);
	free(patch->path);
	free(patch->coming_failure);
	free(patch);
}

static int init_object(struct lp_patch_rt *patch, struct lp_object_rt *obj, struct lp_object *desc)
{
	size_t n = 0;

	while (desc->funcs[n].old_name)
		n++;
	obj->desc = desc;
	obj->patch = patch;
	obj->name = desc->name ? strdup(desc->name) : NULL;
	obj->funcs = calloc(n ? n : 1, sizeof(*obj->funcs));
	if ((desc->name && !obj->name) || !obj->funcs)
		return -1;
	obj->nfuncs = n;
	for (size_t i = 0; i < n; i++) {
		struct lp_func_rt *func = &obj->funcs[i];

		func->desc = &desc->funcs[i];
		func->patch = patch;
		func->name = strdup(desc->funcs[i].old_name);
		func->sympos = desc->funcs[i].old_sympos;
		func->new_func = desc->funcs[i].new_func;
		list_init(&func->stack_node);
		if (!func->name)
			return -1;
	}
	return 0;
}

static struct lp_patch_rt *new_patch(struct lp_patch *desc, const char *name, const char *path)
{
	struct lp_patch_rt *patch = calloc(1, sizeof(*patch));
	size_t n = 0;

	if (!patch)
		return NULL;
	while (desc->objs[n].funcs || desc->objs[n].name)
		n++;
	snprintf(patch->name, sizeof(patch->name), "%s", desc->name ? desc->name : name);
	patch->desc = desc;
	patch->fd = -1;
	patch->path = strdup(path);
	patch->objs = calloc(n, sizeof(*patch->objs));
	patch->nobjs = n;
	list_init(&patch->node);
	if (!patch->path || !patch->objs)
		goto fail;
	for (size_t o = 0; o < n; o++)
		if (init_object(patch, &patch->objs[o], &desc->objs[o]) < 0)
			goto fail;
	return patch;
fail:
	free_patch(patch);
	return NULL;
}

static int text_range_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct lp_patch_rt *patch = arg;
	struct link_map *map;

	(void)size;
	if (dlinfo(patch->handle, RTLD_DI_LINKMAP, &map) < 0 || info->dlpi_addr != map->l_addr)
		return 0;
	patch->bias = info->dlpi_addr;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		if (!patch->text_lo || lo < patch->text_lo)
			patch->text_lo = lo;
		if (lo + ph->p_memsz > patch->text_hi)
			patch->text_hi = lo + ph->p_memsz;
	}
	return 1;
}

/*
 * The size of every replacement function, from the patch's symbols: the
 * code a thread must have left before it may switch back when the patch
 * goes.  A function whose symbol is not found keeps size 0, which stands
 * for all of the patch's text.
 */
static void size_new_funcs(struct lp_patch_rt *patch, const char *path)
{
	struct lp_elf *elf = lp_elf_open(path, patch->bias, NULL, NULL, 0);

	if (!elf)
		return;
	for (size_t o = 0; o < patch->nobjs; o++) {
		struct lp_object_rt *obj = &patch->objs[o];

		for (size_t i = 0; i < obj->nfuncs; i++) {
			struct lp_func_rt *func = &obj->funcs[i];
			struct lp_elf_sym sym;

			if (lp_elf_func_at(elf, (uintptr_t)func->new_func, NULL, &sym) == 0 &&
			    sym.addr == (uintptr_t)func->new_func)
				func->new_size = sym.size;
		}
	}
	lp_elf_close(elf);
}

/* What every replacement function may change (regs.c); unknown size: anything. */
static void note_new_clobbers(struct lp_patch_rt *patch)
{
	for (size_t o = 0; o < patch->nobjs; o++)
		for (size_t i = 0; i < patch->objs[o].nfuncs; i++)
			patch->objs[o].funcs[i].new_clobbers =
			    lp_new_func_clobbers(&patch->objs[o].funcs[i]);
}

/*
 * dlopen() the file through its descriptor, which stays open while the
 * patch is loaded: the loader knows objects by name, and a name like
 * /proc/thread-self/fd/7 must not be reused by another patch while this one is
 * loaded.
 */
static struct lp_patch_rt *load_patch(int fd, const char *path, const char *name, char *err,
				      size_t errlen)
{
	struct lp_patch_rt *patch;
	struct lp_patch *desc;
	char fdpath[64];
	void *handle;

	snprintf(fdpath, sizeof(fdpath), "/proc/thread-self/fd/%d", fd);
	lp_loading_patch = true; /* the loader hook must not patch the patch */
	handle = dlopen(fdpath, RTLD_NOW | RTLD_LOCAL);
	lp_loading_patch = false;
	if (!handle) {
		snprintf(err, errlen, "cannot load %s: %s", path, dlerror());
		return NULL;
	}
	desc = dlsym(handle, LP_PATCH_SYMBOL);
	if (!desc) {
		snprintf(err, errlen, "%s has no patch descriptor (%s; declare it with LP_PATCH)",
			 path, LP_PATCH_SYMBOL);
		dlclose(handle);
		return NULL;
	}
	if (validate(desc, err, errlen) < 0) {
		dlclose(handle);
		return NULL;
	}
	patch = new_patch(desc, name, path);
	if (!patch) {
		snprintf(err, errlen, "out of memory");
		dlclose(handle);
		return NULL;
	}
	patch->handle = handle;
	patch->fd = fd;
	/* Its callbacks, and the libraries it brought, run under lp_mutex. */
	lp_tls_touch_all();
	dl_iterate_phdr(text_range_cb, patch);
	size_new_funcs(patch, fdpath);
	note_new_clobbers(patch);
	return patch;
}

static void unload_patch(struct lp_patch_rt *patch)
{
	dlclose(patch->handle);
	close(patch->fd);
	free_patch(patch);
}

/* Whether the transition in progress was reversed (kernel: patch->enabled flipped). */
static bool transition_reversed;

/* Kernel: __klp_enable_patch().  True when the transition completed at once. */
static int enable_patch(struct lp_patch_rt *patch, bool *done, char *err, size_t errlen)
{
	lp_log("enabling patch '%s'", patch->name);
	list_add_tail(&patch->node, &lp_patches);
	transition_reversed = false;
	lp_init_transition(patch, LP_TASK_PATCHED);
	for (size_t o = 0; o < patch->nobjs; o++) {
		struct lp_object_rt *obj = &patch->objs[o];

		if (!obj->mod)
			continue;
		if (lp_pre_patch_callback(obj, err, errlen) < 0 ||
		    lp_patch_object(obj, false, err, errlen) < 0) {
			lp_log("%s", err);
			lp_log("failed to enable patch '%s'", patch->name);
			lp_cancel_transition();
			list_del(&patch->node);
			return -1;
		}
	}
	lp_start_transition();
	patch->enabled = true;
	*done = lp_try_complete_transition(false);
	return 0;
}

/* Kernel: klp_init_object_loaded() for the objects marked alive. */
static int resolve_objects(struct lp_patch_rt *patch, char *err, size_t errlen)
{
	for (size_t o = 0; o < patch->nobjs; o++) {
		struct lp_module *mod = lp_module_find(patch->objs[o].name);

		if (mod && lp_object_bind(&patch->objs[o], mod, err, errlen) < 0)
			return -1;
	}
	return 0;
}

static int count_funcs(const struct lp_patch_rt *patch, size_t *nobjs)
{
	int n = 0;

	*nobjs = 0;
	for (size_t o = 0; o < patch->nobjs; o++) {
		const struct lp_object_rt *obj = &patch->objs[o];

		if (!obj->mod || obj->dynamic)
			continue;
		(*nobjs)++;
		for (size_t i = 0; i < obj->nfuncs; i++)
			n += !obj->funcs[i].nop;
	}
	return n;
}

static void describe_enabled(const struct lp_patch_rt *patch, char *msg, size_t len)
{
	size_t nobjs;
	int nfuncs = count_funcs(patch, &nobjs);

	size_t later = 0;
	char rest[64] = "";

	for (size_t o = 0; o < patch->nobjs; o++)
		later += !patch->objs[o].mod && !patch->objs[o].dynamic;
	/* The loader hook patches those when they load (coming.c). */
	if (later)
		snprintf(rest, sizeof(rest), "; %zu not loaded yet", later);
	snprintf(msg, len, "patch '%s' enabled (%d function%s in %zu object%s%s)", patch->name,
		 nfuncs, nfuncs == 1 ? "" : "s", nobjs, nobjs == 1 ? "" : "s", rest);
}

static void busy(char *err, size_t errlen)
{
	snprintf(err, errlen, "patch '%s' is in transition", lp_transition_patch->name);
}

/*
 * A disabled patch leaves the list, and lets go of the objects it was
 * bound to; its code goes once no thread runs it.
 */
static void retire(struct lp_patch_rt *patch)
{
	for (size_t o = 0; o < patch->nobjs; o++)
		lp_object_release(&patch->objs[o]);
	list_del(&patch->node);
	list_add_tail(&patch->node, &retired);
}

/*
 * A transition of @patch to @target completed: a disabled patch goes, and
 * an enabled replace patch's transition disabled the patches it replaced
 * (kernel: klp_free_patch_async(), klp_free_replaced_patches_async()).
 * Forcing it let threads run theirs unchecked too: their code stays.
 */
static void settle(struct lp_patch_rt *patch, int target)
{
	struct lp_patch_rt *old, *tmp;

	if (target == LP_TASK_UNPATCHED) {
		retire(patch);
		return;
	}
	list_for_each_entry_safe (old, tmp, &lp_patches, node) {
		if (old == patch)
			break;
		if (old->enabled)
			continue;
		old->forced |= patch->forced;
		retire(old);
	}
}

/*
 * Load the patch file open as @fd and enable it.  On failure nothing is
 * left changed and @err says why.  On success @name (LP_NAME_MAX bytes)
 * holds the patch's name, @err the message for the user, and *@waiting
 * whether the transition is still going on.  Takes ownership of @fd.
 */
int lp_apply_patch(int fd, const char *path, char *name, bool *waiting, char *err, size_t errlen)
{
	struct lp_patch_rt *patch;
	int ret = -EINVAL;
	bool done = false;

	if (check_file(fd, path, err, errlen) < 0 || name_from_path(path, name, err, errlen) < 0 ||
	    !(patch = load_patch(fd, path, name, err, errlen))) {
		close(fd);
		return -EINVAL;
	}
	lp_lock();
	if (find_patch(patch->name)) {
		snprintf(err, errlen, "a patch named '%s' is already applied", patch->name);
		ret = -EEXIST;
	} else if (lp_transition_patch) {
		busy(err, errlen);
		ret = -EBUSY;
	} else if (lp_states_compatible(patch, err, errlen) < 0) {
		lp_log("%s", err);
	} else if (patch->desc->replace && lp_add_nops(patch) < 0) {
		snprintf(err, errlen, "out of memory");
	} else if (resolve_objects(patch, err, errlen) < 0) {
		lp_log("'%s': %s", patch->name, err);
	} else if (enable_patch(patch, &done, err, errlen) == 0) {
		describe_enabled(patch, err, errlen);
		snprintf(name, LP_NAME_MAX, "%s", patch->name);
		if (done)
			settle(patch, LP_TASK_PATCHED);
		ret = 0;
	}
	lp_unlock();
	if (ret < 0) {
		unload_patch(patch);
		return ret;
	}
	*waiting = !done;
	return 0;
}

/* Kernel: __klp_disable_patch(). */
static bool disable_patch(struct lp_patch_rt *patch)
{
	transition_reversed = false;
	lp_init_transition(patch, LP_TASK_UNPATCHED);
	for (size_t o = 0; o < patch->nobjs; o++) {
		struct lp_object_rt *obj = &patch->objs[o];

		if (obj->patched)
			lp_pre_unpatch_callback(obj);
	}
	lp_start_transition();
	patch->enabled = false;
	return lp_try_complete_transition(false);
}

/*
 * Disable the patch named @name, or reverse its transition if it is being
 * enabled.  On success @err holds the message and *@waiting tells whether
 * the transition goes on.
 */
int lp_revert_patch(const char *name, bool *waiting, char *err, size_t errlen)
{
	struct lp_patch_rt *patch;
	bool done = false;
	int ret = 0;

	lp_lock();
	patch = find_patch(name);
	if (!patch) {
		snprintf(err, errlen, "no patch named '%s'", name);
		ret = -ENOENT;
	} else if (patch == lp_transition_patch && !patch->enabled) {
		snprintf(err, errlen, "patch '%s' is already being disabled", name);
		ret = -EINVAL;
	} else if (patch == lp_transition_patch) {
		patch->enabled = false;
		transition_reversed = true;
		lp_reverse_transition();
		done = lp_try_complete_transition(false);
	} else if (lp_transition_patch) {
		busy(err, errlen);
		ret = -EBUSY;
	} else {
		done = disable_patch(patch);
	}
	if (ret == 0) {
		if (done)
			settle(patch, LP_TASK_UNPATCHED);
		snprintf(err, errlen, "patch '%s' disabled", name);
		*waiting = !done;
	}
	lp_unlock();
	if (ret == 0 && done)
		lp_reap_retired();
	return ret;
}

/*
 * Kernel: klp_transition_work_fn(), run by the agent on its timer and when
 * a thread switched itself: one more check of the threads not switched
 * yet.  True when the transition ended; @end says how.
 */
bool lp_transition_work(bool signal_all, struct lp_transition_end *end)
{
	struct lp_patch_rt *patch;
	int target;
	bool done = false;

	lp_lock();
	patch = lp_transition_patch;
	target = lp_target_state;
	if (patch && signal_all)
		lp_log("'%s': signalling remaining threads", patch->name);
	if (patch && lp_try_complete_transition(signal_all)) {
		snprintf(end->name, sizeof(end->name), "%s", patch->name);
		end->target = target;
		end->forced = patch->forced;
		end->reversed = transition_reversed;
		snprintf(end->failure, sizeof(end->failure), "%s",
			 patch->coming_failure ? patch->coming_failure : "");
		free(patch->coming_failure);
		patch->coming_failure = NULL;
		settle(patch, target);
		done = true;
	}
	lp_unlock();
	return done;
}

/* Kernel: klp_force_transition(), through the sysfs "force" file. */
int lp_force(char *msg, size_t len)
{
	int ret = 0;

	lp_lock();
	if (!lp_transition_patch) {
		snprintf(msg, len, "no patch is in transition");
		ret = -EINVAL;
	} else {
		int n = lp_force_transition();
		snprintf(msg, len, "'%s': transition forced (%d thread%s switched without a check)",
			 lp_transition_patch->name, n, n == 1 ? "" : "s");
	}
	lp_unlock();
	return ret;
}

/* The transition in progress, for the agent's answers: its patch name and direction. */
bool lp_transition_info(char *name, size_t len, int *target)
{
	bool any;

	lp_lock();
	any = lp_transition_patch != NULL;
	if (any) {
		snprintf(name, len, "%s", lp_transition_patch->name);
		*target = lp_target_state;
	}
	lp_unlock();
	return any;
}

bool lp_have_retired(void)
{
	bool any;

	lp_lock();
	any = !list_empty(&retired);
	lp_unlock();
	return any;
}

/*
 * Unload every disabled patch whose code no thread is running any more.
 * A forced patch is never unloaded: threads may still run its code.
 */
void lp_reap_retired(void)
{
	struct list_head done = LIST_HEAD_INIT(done);
	struct lp_patch_rt *patch, *tmp;
	char err[LP_ERR_MAX];

	lp_lock();
	list_for_each_entry_safe (patch, tmp, &retired, node) {
		pid_t holder = 0;

		if (patch->forced)
			continue;
		err[0] = '\0';
		if (lp_threads_scan_stacks(patch->text_lo, patch->text_hi, &holder, err,
					   sizeof(err)) < 0 ||
		    holder)
			continue;
		list_del(&patch->node);
		list_add_tail(&patch->node, &done);
	}
	lp_unlock();
	list_for_each_entry_safe (patch, tmp, &done, node)
		unload_patch(patch);
}
