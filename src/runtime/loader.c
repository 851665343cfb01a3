// SPDX-License-Identifier: MIT
/*
 * The objects the dynamic loader has loaded (kernel: the module list), and
 * the hook through which the runtime hears of every change before it takes
 * effect (kernel: the module notifier calling klp_module_coming() and
 * klp_module_going(), coming.c here).
 *
 * The hook is the loader's interface for debuggers: the loader calls the
 * function at _r_debug.r_brk, a bare `ret`, with r_state RT_ADD or
 * RT_DELETE before it maps or unmaps objects and RT_CONSISTENT when its
 * list is whole again.  The runtime redirects that function to
 * lp_loader_event() with its own redirect machinery (patch.c):
 *
 *  - RT_CONSISTENT ending a dlopen(): the new objects are mapped and
 *    listed; their relocation and their constructors are still to come.
 *    Each one is coming.
 *  - RT_DELETE in a dlclose(): the destructors of the objects it unloads
 *    have run, the loader has marked them removed and unmaps them next.
 *    Each one is going.  The mark is private to the loader, but its symbol
 *    lookups skip marked objects: an object goes when a symbol that a
 *    lookup found in it when it came (its probe) no longer resolves to it.
 *  - RT_CONSISTENT ending a dlclose(): an object gone from the list that
 *    had no probe is forgotten; its memory is gone, so is any callback.
 *
 * The loader calls the hook with its lock held, one event at a time; the
 * hook takes lp_mutex after it (core.c's lock order).  Objects in link-map
 * namespaces other than the default one (dlmopen()) are never patched: a
 * patch that names one is told so (coming.c).
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elf/lp_elf.h"
#include "runtime.h"

/* Exported symbols tried as probes before an object counts as unwatchable. */
#define PROBE_TRIES 16
#define FUNC_ALIGN  16

struct list_head lp_modules = LIST_HEAD_INIT(lp_modules);
__thread bool lp_loading_patch __attribute__((tls_model("initial-exec")));

/* Objects of other namespaces already reported, so that each is told once. */
struct foreign {
	struct foreign *next;
	const struct link_map *map;
	uintptr_t bias;
	long lmid;
	bool seen;
};
static struct foreign *foreigners;

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* A library matches by the name it was loaded under (normally its soname)
 * or by the name of the file that name leads to. */
bool lp_module_matches(struct lp_module *mod, const char *name)
{
	char real[PATH_MAX];

	if (mod->main)
		return name == NULL;
	if (!name)
		return false;
	if (strcmp(base_name(mod->path), name) == 0)
		return true;
	if (!mod->file && realpath(mod->path, real))
		mod->file = strdup(base_name(real));
	return mod->file && strcmp(mod->file, name) == 0;
}

struct lp_module *lp_module_find(const char *name)
{
	struct lp_module *mod;

	list_for_each_entry (mod, &lp_modules, node)
		if (mod->alive && !mod->patch_file && lp_module_matches(mod, name))
			return mod;
	return NULL;
}

static struct lp_module *module_new(struct link_map *map)
{
	struct lp_module *mod = calloc(1, sizeof(*mod));
	char exe[PATH_MAX];
	ssize_t n;

	if (!mod)
		return NULL;
	mod->map = map;
	mod->bias = map->l_addr;
	/* The main program is listed first, with an empty name. */
	mod->main = list_empty(&lp_modules);
	if (mod->main && (n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) > 0) {
		exe[n] = '\0';
		mod->path = strdup(exe);
	} else {
		mod->path = strdup(map->l_name ? map->l_name : "");
	}
	if (!mod->path) {
		free(mod);
		return NULL;
	}
	list_add_tail(&mod->node, &lp_modules);
	return mod;
}

/* Drop @mod, whose map the loader frees: objects seen through it need another way. */
static void module_forget(struct lp_module *mod)
{
	struct lp_module *m;

	list_for_each_entry (m, &lp_modules, node)
		if (m->root == mod->map)
			m->root = NULL;
	list_del(&mod->node);
	free(mod->path);
	free(mod->file);
	free(mod);
}

/* Whether a lookup through @root's search list finds the probe in @mod. */
static bool probe_resolves(const struct lp_module *mod, struct link_map *root)
{
	void *addr = dlsym(root, mod->probe);

	if (!addr)
		dlerror(); /* a failed lookup leaves an error for dlerror() */
	return (uintptr_t)addr == mod->probe_addr;
}

struct probe_search {
	struct lp_module *mod;
	struct link_map *root;
	int tries;
};

static int try_probe(const char *name, uint64_t value, void *arg)
{
	struct probe_search *s = arg;
	struct lp_module *mod = s->mod;

	if (strlen(name) >= sizeof(mod->probe) || s->tries++ == PROBE_TRIES)
		return -1;
	memcpy(mod->probe, name, strlen(name) + 1);
	mod->probe_addr = mod->bias + (uintptr_t)value;
	return probe_resolves(mod, s->root);
}

/*
 * Choose how to see @mod go: one of its exported symbols that a lookup
 * through @root's search list finds in it.  @root must be an object
 * dlopen() was asked for, which has a search list (its own and its
 * dependencies'): dlsym() on an object loaded only as a dependency, whose
 * list is empty, crashes.  Only called from the hook, with the loader's
 * lock held by this thread: dlsym() takes it.
 */
static void watch(struct lp_module *mod, struct link_map *root)
{
	struct probe_search s = {.mod = mod, .root = root};

	mod->root = lp_elf_each_export(mod->path, try_probe, &s) == 1 ? root : NULL;
	if (!mod->root)
		mod->probe_addr = 0;
}

/* Still listed by the loader, after a dlclose() that is done. */
static bool listed(const struct lp_module *mod)
{
	for (struct link_map *m = _r_debug.r_map; m; m = m->l_next)
		if (m == mod->map)
			return true;
	return false;
}

/*
 * RT_DELETE: the objects the loader is about to unmap go now.  Every probe
 * is looked at before any object is forgotten: one may be seen through
 * another that goes too.
 */
static void objects_going(void)
{
	struct lp_module *mod, *tmp;

	list_for_each_entry (mod, &lp_modules, node)
		mod->going = mod->root && !probe_resolves(mod, mod->root);
	list_for_each_entry (mod, &lp_modules, node)
		if (mod->going && mod->alive)
			lp_module_going(mod, false);
	list_for_each_entry_safe (mod, tmp, &lp_modules, node)
		if (mod->going)
			module_forget(mod);
}

static struct lp_module *tracked(const struct link_map *map)
{
	struct lp_module *mod;

	list_for_each_entry (mod, &lp_modules, node)
		if (mod->map == map && mod->bias == map->l_addr &&
		    (mod->main || strcmp(mod->path, map->l_name) == 0))
			return mod;
	return NULL;
}

/*
 * RT_CONSISTENT: forget what left without being seen going, then take in
 * the objects new since the last look, in load order.  The first new one
 * is the object dlopen() was asked for, whose search list holds the others.
 */
static void objects_settled(bool init)
{
	struct lp_module *mod, *tmp, *first = NULL;
	struct link_map *batch_root = NULL;

	list_for_each_entry_safe (mod, tmp, &lp_modules, node) {
		if (mod->main || listed(mod))
			continue;
		if (mod->alive)
			lp_module_going(mod, true);
		module_forget(mod);
	}
	/* Seen through an object that went: only an opened one can watch itself. */
	list_for_each_entry (mod, &lp_modules, node)
		if (!mod->main && !mod->root && mod->probe_addr)
			watch(mod, mod->opened ? mod->map : NULL);
	for (struct link_map *m = _r_debug.r_map; m; m = m->l_next) {
		if (tracked(m))
			continue;
		mod = module_new(m);
		if (!mod) {
			lp_log("out of memory: %s is not tracked", m->l_name);
			continue;
		}
		if (!batch_root) {
			batch_root = m;
			first = mod;
			mod->opened = true;
			mod->patch_file = lp_loading_patch;
		}
		if (!mod->main && !mod->patch_file && !init)
			watch(mod, batch_root);
	}
	/* New modules were added at the tail, after @first. */
	list_for_each_entry (mod, &lp_modules, node) {
		if (first && mod == first)
			first = NULL;
		if (first || mod->alive)
			continue;
		mod->alive = true;
		if (!init && !mod->patch_file)
			lp_module_coming(mod);
	}
}

/* Report what a patch names in other namespaces, once per object. */
static void scan_foreign(void)
{
	const struct r_debug_extended *ns;
	struct foreign **p, *f;
	void *base = &_r_debug;
	long lmid = 0;

	if (_r_debug.r_version < 2)
		return;
	/* Version 2 extends the same object: hide the cast from the bounds checker. */
	__asm__("" : "+r"(base));
	ns = base;
	for (f = foreigners; f; f = f->next)
		f->seen = false;
	for (ns = ns->r_next, lmid = 1; ns; ns = ns->r_next, lmid++) {
		for (const struct link_map *m = ns->base.r_map; m; m = m->l_next) {
			for (f = foreigners; f; f = f->next)
				if (f->map == m && f->bias == m->l_addr && f->lmid == lmid)
					break;
			if (!f && (f = calloc(1, sizeof(*f)))) {
				*f = (struct foreign){foreigners, m, m->l_addr, lmid, false};
				foreigners = f;
				lp_module_foreign(m->l_name, lmid);
			}
			if (f)
				f->seen = true;
		}
	}
	for (p = &foreigners; (f = *p);) {
		if (f->seen) {
			p = &f->next;
			continue;
		}
		*p = f->next;
		free(f);
	}
}

/* Called by lp_arch_loader_entry, in whatever thread dlopen()s or dlclose()s. */
__attribute__((used)) void lp_loader_event(void);
__attribute__((used)) void lp_loader_event(void)
{
	int saved_errno = errno;

	/* The runtime never loads anything with its lock held: say so if it did. */
	if (lp_locked_by_me()) {
		lp_log(
		    "the loader changed the objects while the runtime held its lock: not followed");
		return;
	}
	lp_lock();
	if (_r_debug.r_state == RT_DELETE)
		objects_going();
	else if (_r_debug.r_state == RT_CONSISTENT)
		objects_settled(false);
	scan_foreign();
	lp_unlock();
	errno = saved_errno;
}

/*
 * How many bytes the loader's hook function spans, padding included: it is
 * a `ret`, shorter than the jump that replaces it, but nothing ever runs
 * the padding up to the next function.
 */
static size_t hook_span(uintptr_t brk, char *err, size_t errlen)
{
	const ElfW(Sym) *sym = NULL;
	uintptr_t end;
	Dl_info info;

	if (!dladdr1((void *)brk, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym ||
	    (uintptr_t)info.dli_saddr != brk || !sym->st_size) {
		snprintf(err, errlen, "cannot find the loader's debugger hook at %#lx",
			 (unsigned long)brk);
		return 0;
	}
	end = (brk + sym->st_size + FUNC_ALIGN - 1) & ~(uintptr_t)(FUNC_ALIGN - 1);
	if (end - brk < LP_JMP_SIZE ||
	    !lp_arch_is_padding((const uint8_t *)(brk + sym->st_size), end - brk - sym->st_size,
				brk + sym->st_size))
		end = brk + sym->st_size;
	return end - brk;
}

/*
 * dl_iterate_phdr() holds the loader's write lock, which dlopen() takes to
 * add an object to the list and dlclose() to take objects out and free
 * them: the list stands still for the walk.  (An injected runtime walks it
 * while the program's threads may be loading and unloading.)  lp_mutex
 * comes first, as when object.c looks an object up.
 */
static int take_in_cb(struct dl_phdr_info *info, size_t size, void *done)
{
	(void)info;
	(void)size;
	if (!*(bool *)done)
		objects_settled(true);
	*(bool *)done = true;
	return 1;
}

/*
 * Take in every object loaded so far, then hook the loader.  None of them
 * is watched: the program's own dependencies are never unloaded, and which
 * of the others dlopen() was asked for (and can be watched) the loader
 * does not tell.  Called before the agent serves anything.
 */
int lp_loader_init(char *err, size_t errlen)
{
	bool done = false;
	size_t span;

	if (!_r_debug.r_map || !_r_debug.r_brk) {
		snprintf(err, errlen, "the dynamic loader offers no debugger interface");
		return -1;
	}
	lp_lock();
	dl_iterate_phdr(take_in_cb, &done);
	lp_unlock();
	span = hook_span(_r_debug.r_brk, err, errlen);
	if (!span)
		return -1;
	lp_lock();
	if (lp_ops_hook(_r_debug.r_brk, span, (void *)lp_arch_loader_entry, err, errlen) < 0) {
		lp_unlock();
		return -1;
	}
	lp_unlock();
	return 0;
}

/* An object loaded before the runtime came, and the handle that holds it. */
struct earlier {
	void *handle;
	struct link_map *map;
	char *path;
	struct lp_module probe; /* only probe, probe_addr and bias */
};

/* Under lp_mutex: the objects nothing watches yet. */
static size_t unwatched(struct earlier **out)
{
	struct lp_module *mod;
	struct earlier *e;
	size_t n = 0;

	list_for_each_entry (mod, &lp_modules, node)
		n += !mod->main && !mod->patch_file && !mod->root;
	*out = e = n ? calloc(n, sizeof(*e)) : NULL;
	if (!e)
		return 0;
	n = 0;
	list_for_each_entry (mod, &lp_modules, node) {
		if (mod->main || mod->patch_file || mod->root)
			continue;
		e[n].map = mod->map;
		e[n].path = strdup(mod->path);
		e[n].probe.bias = mod->bias;
		n += e[n].path != NULL;
	}
	return n;
}

/* Hold @e by a handle of its own and choose its probe; false when it cannot. */
static bool probe_earlier(struct earlier *e)
{
	struct probe_search s = {.mod = &e->probe, .root = e->map};
	struct link_map *map = NULL;

	e->handle = dlopen(e->path, RTLD_LAZY | RTLD_NOLOAD);
	if (!e->handle)
		return false;
	/* Another object of that name (the one listed went meanwhile): leave it. */
	if (dlinfo(e->handle, RTLD_DI_LINKMAP, &map) < 0 || map != e->map)
		return false;
	return lp_elf_each_export(e->path, try_probe, &s) == 1;
}

/*
 * An injected runtime: the objects loaded before it came may include
 * libraries the program dlopen()ed, which it may unload again, and their
 * patches' callbacks must run before they are unmapped.  Each is watched
 * through itself: a dlopen(RTLD_NOLOAD) of it gives it a search list if it
 * had none (an object loaded only as a dependency has none, and dlsym()
 * on it would crash), and holds it while its probe is chosen.  Called in
 * the agent without lp_mutex: dlopen() and dlsym() take the loader's lock.
 */
void lp_loader_watch_earlier(void)
{
	struct lp_module *mod;
	struct earlier *e;
	size_t n;

	lp_lock();
	n = unwatched(&e);
	lp_unlock();
	for (size_t i = 0; i < n; i++)
		if (!probe_earlier(&e[i]))
			e[i].probe.probe_addr = 0;
	lp_lock();
	for (size_t i = 0; i < n; i++) {
		mod = e[i].probe.probe_addr ? tracked(e[i].map) : NULL;
		if (!mod || mod->root)
			continue;
		memcpy(mod->probe, e[i].probe.probe, sizeof(mod->probe));
		mod->probe_addr = e[i].probe.probe_addr;
		mod->opened = true;
		mod->root = mod->map;
	}
	lp_unlock();
	for (size_t i = 0; i < n; i++) {
		if (e[i].handle)
			dlclose(e[i].handle);
		free(e[i].path);
	}
	free(e);
}
