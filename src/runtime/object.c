// SPDX-License-Identifier: MIT
/*
 * Objects of a patch: finding the loaded main program or library a patch
 * object names, checking its build-id, and resolving the patch's functions
 * and symbol references in it (kernel: klp_init_object_loaded and the klp
 * relocations).
 */
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "elf/lp_elf.h"
#include "runtime.h"

/* What the loader mapped of one object, for its build-id. */
struct mapped {
	const struct lp_module *mod;
	char build_id[2 * 64 + 1];
	bool found;
};

/* The GNU build-id note of a loaded object, read from its mapped PT_NOTE. */
static void mapped_build_id(const struct dl_phdr_info *info, char *hex, size_t size)
{
	hex[0] = '\0';
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
		const char *end = p + ph->p_memsz;

		if (ph->p_type != PT_NOTE)
			continue;
		while (p + sizeof(ElfW(Nhdr)) <= end) {
			const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
			const unsigned char *desc =
			    (const unsigned char *)(n + 1) + ((n->n_namesz + 3) & ~3u);

			if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
			    memcmp(n + 1, "GNU", 4) == 0 && 2 * n->n_descsz < size) {
				for (unsigned j = 0; j < n->n_descsz; j++)
					snprintf(hex + 2 * j, 3, "%02x", desc[j]);
				return;
			}
			p = (const char *)desc + ((n->n_descsz + 3) & ~3u);
		}
	}
}

static int mapped_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct mapped *m = arg;
	const struct lp_module *mod = m->mod;
	bool main_program = info->dlpi_name == NULL || info->dlpi_name[0] == '\0';

	(void)size;
	if (info->dlpi_addr != mod->bias || main_program != mod->main ||
	    (!mod->main && strcmp(info->dlpi_name, mod->path) != 0))
		return 0;
	mapped_build_id(info, m->build_id, sizeof(m->build_id));
	m->found = true;
	return 1;
}

static const char *display_name(const struct lp_object_rt *obj)
{
	return obj->name ? obj->name : "the main program";
}

static int resolve_funcs(struct lp_object_rt *obj, struct lp_elf *elf, char *err, size_t errlen)
{
	for (size_t i = 0; i < obj->nfuncs; i++) {
		struct lp_func_rt *func = &obj->funcs[i];
		struct lp_prologue prologue;
		struct lp_elf_sym sym;
		char why[LP_ERR_MAX];

		if (lp_elf_find(elf, func->name, func->sympos, &sym, err, errlen) < 0)
			return -1;
		if (!sym.is_func || sym.is_ifunc) {
			snprintf(err, errlen, "'%s' in %s is %s", func->name, display_name(obj),
				 sym.is_ifunc ? "an IFUNC resolver, not a function"
					      : "not a function");
			return -1;
		}
		func->old_addr = sym.addr;
		func->old_size = sym.size;
		/* Refuse an unpatchable function now, before anything changes. */
		if (lp_func_analyse(sym.addr, sym.size, &prologue, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "cannot patch '%s' in %s: %s", func->name,
				 display_name(obj), why);
			return -1;
		}
		if (lp_check_clobbers(func, elf, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "cannot patch '%s' in %s safely: %s", func->name,
				 display_name(obj), why);
			return -1;
		}
	}
	return 0;
}

static int resolve_symbols(struct lp_object_rt *obj, struct lp_elf *elf, char *err, size_t errlen)
{
	struct lp_symbol *ref = obj->desc->syms;

	for (; ref && ref->name; ref++) {
		struct lp_elf_sym sym;

		if (!ref->addr) {
			snprintf(err, errlen, "symbol reference '%s' has no address to fill",
				 ref->name);
			return -1;
		}
		if (lp_elf_find(elf, ref->name, ref->sympos, &sym, err, errlen) < 0)
			return -1;
		*ref->addr = (void *)sym.addr;
	}
	return 0;
}

static int check_build_id(struct lp_object_rt *obj, const char *want, char *err, size_t errlen)
{
	if (!want || strcasecmp(want, obj->build_id) == 0)
		return 0;
	snprintf(err, errlen, "build-id mismatch for %s (%s): the patch expects %s, found %s",
		 display_name(obj), obj->path, want, obj->build_id[0] ? obj->build_id : "none");
	return -1;
}

/*
 * Resolve @obj in loaded object @mod: check its build-id, find every
 * function and symbol reference.  Returns 0 with @obj bound to @mod, or -1
 * with the reason in @err and @obj left unbound.
 */
int lp_object_bind(struct lp_object_rt *obj, struct lp_module *mod, char *err, size_t errlen)
{
	struct mapped m = {.mod = mod};
	struct lp_elf *elf;
	int ret;

	dl_iterate_phdr(mapped_cb, &m);
	if (!m.found) {
		snprintf(err, errlen, "%s is not mapped", mod->path);
		return -1;
	}
	/* The running program's file stays reachable even if replaced on disk. */
	elf = lp_elf_open(mod->main ? "/proc/thread-self/exe" : mod->path, mod->bias, NULL, err,
			  errlen);
	if (!elf)
		return -1;
	/* Symbols of another build than the one mapped would be wrong addresses. */
	if (m.build_id[0] && strcmp(m.build_id, lp_elf_build_id(elf)) != 0) {
		snprintf(err, errlen,
			 "%s on disk is not the file loaded in the process "
			 "(build-id %s, loaded %s): was it replaced?",
			 mod->path, lp_elf_build_id(elf), m.build_id);
		lp_elf_close(elf);
		return -1;
	}
	obj->path = strdup(mod->path);
	obj->build_id = strdup(lp_elf_build_id(elf));
	obj->bias = mod->bias;
	if (!obj->path || !obj->build_id) {
		snprintf(err, errlen, "out of memory");
		ret = -1;
	} else {
		ret = check_build_id(obj, obj->desc->build_id, err, errlen);
		if (ret == 0)
			ret = resolve_funcs(obj, elf, err, errlen);
		if (ret == 0)
			ret = resolve_symbols(obj, elf, err, errlen);
	}
	lp_elf_close(elf);
	if (ret < 0)
		lp_object_release(obj);
	else
		obj->mod = mod;
	return ret;
}

void lp_object_release(struct lp_object_rt *obj)
{
	free(obj->path);
	free(obj->build_id);
	obj->path = NULL;
	obj->build_id = NULL;
	obj->mod = NULL;
	/* Addresses of an object no longer bound mean nothing. */
	for (size_t i = 0; i < obj->nfuncs; i++) {
		obj->funcs[i].old_addr = 0;
		obj->funcs[i].old_size = 0;
	}
}
