// SPDX-License-Identifier: MIT
/*
 * The objects a patch names, read from its file without loading it (which
 * would run its code in this process): `apply --all` looks for the
 * processes that map them.  The descriptor lp_patch_descriptor is data of
 * the shared object whose pointers are relocations, so every pointer is
 * read through the file's dynamic relocations (R_X86_64_RELATIVE, or
 * R_X86_64_64 against a symbol the patch defines) and the data it points
 * at from the section that holds that address.
 */
#include <elf.h>
#include <gelf.h>
#include <libelf.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lpatch.h>

#include "cli.h"
#include "elf/lp_elf.h"

#define MAX_ENTRIES 4096
#define MAX_STRING  512

struct reloc {
	uint64_t at, value;
};

struct image {
	Elf *elf;
	struct reloc *relocs;
	size_t nrelocs;
	char *err;
	size_t errlen;
};

static int cmp_reloc(const void *a, const void *b)
{
	uint64_t x = ((const struct reloc *)a)->at, y = ((const struct reloc *)b)->at;

	return (x > y) - (x < y);
}

/* Copy @len bytes of the image at address @addr; false when no section holds them. */
static bool read_at(const struct image *im, uint64_t addr, void *buf, size_t len)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(im->elf, scn))) {
		Elf_Data *data;
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh) || !(sh.sh_flags & SHF_ALLOC) || addr < sh.sh_addr ||
		    addr + len > sh.sh_addr + sh.sh_size)
			continue;
		if (sh.sh_type == SHT_NOBITS) {
			memset(buf, 0, len);
			return true;
		}
		data = elf_getdata(scn, NULL);
		if (!data || !data->d_buf || addr - sh.sh_addr + len > data->d_size)
			return false;
		memcpy(buf, (const char *)data->d_buf + (addr - sh.sh_addr), len);
		return true;
	}
	return false;
}

/* The pointer stored at @addr, once relocated. */
static bool read_ptr(const struct image *im, uint64_t addr, uint64_t *ptr)
{
	struct reloc key = {.at = addr};
	const struct reloc *r =
	    im->nrelocs ? bsearch(&key, im->relocs, im->nrelocs, sizeof(key), cmp_reloc) : NULL;

	if (r) {
		*ptr = r->value;
		return true;
	}
	return read_at(im, addr, ptr, sizeof(*ptr));
}

/* A NUL-terminated string at @addr, copied; NULL for a null pointer. */
static int read_string(const struct image *im, uint64_t addr, char **out)
{
	char buf[MAX_STRING];
	size_t n = 0;

	*out = NULL;
	if (!addr)
		return 0;
	while (n < sizeof(buf) && read_at(im, addr + n, &buf[n], 1) && buf[n])
		n++;
	if (n == sizeof(buf) || !read_at(im, addr + n, &buf[n], 1)) {
		lp_set_err(im->err, im->errlen, "the patch's descriptor has a bad string");
		return -1;
	}
	*out = strdup(buf);
	return *out ? 0 : -1;
}

static bool symbol_value(Elf *elf, GElf_Shdr *rel_sh, uint64_t index, uint64_t *value)
{
	Elf_Scn *symscn = elf_getscn(elf, rel_sh->sh_link);
	Elf_Data *data = symscn ? elf_getdata(symscn, NULL) : NULL;
	GElf_Sym sym;

	if (!data || !gelf_getsym(data, (int)index, &sym) || sym.st_shndx == SHN_UNDEF)
		return false;
	*value = sym.st_value;
	return true;
}

/* Every dynamic relocation that stores an address the patch itself defines. */
static int load_relocs(struct image *im)
{
	Elf_Scn *scn = NULL;
	size_t cap = 0;

	while ((scn = elf_nextscn(im->elf, scn))) {
		Elf_Data *data = elf_getdata(scn, NULL);
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || !data || !sh.sh_entsize)
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Rela rela;
			uint64_t value;

			if (!gelf_getrela(data, (int)i, &rela))
				continue;
			if (GELF_R_TYPE(rela.r_info) == R_X86_64_RELATIVE)
				value = (uint64_t)rela.r_addend;
			else if (GELF_R_TYPE(rela.r_info) == R_X86_64_64 &&
				 symbol_value(im->elf, &sh, GELF_R_SYM(rela.r_info), &value))
				value += (uint64_t)rela.r_addend;
			else
				continue;
			if (im->nrelocs == cap) {
				size_t ncap = cap ? 2 * cap : 256;
				struct reloc *v = reallocarray(im->relocs, ncap, sizeof(*v));

				if (!v)
					return -1;
				im->relocs = v;
				cap = ncap;
			}
			im->relocs[im->nrelocs++] = (struct reloc){rela.r_offset, value};
		}
	}
	if (im->nrelocs)
		qsort(im->relocs, im->nrelocs, sizeof(*im->relocs), cmp_reloc);
	return 0;
}

/* The address of lp_patch_descriptor in .dynsym. */
static bool find_descriptor(Elf *elf, uint64_t *addr)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn))) {
		Elf_Data *data = elf_getdata(scn, NULL);
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM || !data || !sh.sh_entsize)
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			const char *name;

			if (!gelf_getsym(data, (int)i, &sym) || sym.st_shndx == SHN_UNDEF)
				continue;
			name = elf_strptr(elf, sh.sh_link, sym.st_name);
			if (name && strcmp(name, LP_PATCH_SYMBOL) == 0) {
				*addr = sym.st_value;
				return true;
			}
		}
	}
	return false;
}

/* A zero-terminated array of @size-byte entries whose name is at @name_off, its sympos at @pos_off.
 */
static int read_names(const struct image *im, uint64_t array, size_t size, size_t name_off,
		      size_t pos_off, struct lp_patch_names *out)
{
	for (size_t i = 0; array && i < MAX_ENTRIES; i++) {
		uint64_t at = array + i * size, name;
		unsigned long pos, *positions;
		char *text, **names;

		if (!read_ptr(im, at + name_off, &name) ||
		    !read_at(im, at + pos_off, &pos, sizeof(pos)))
			return -1;
		if (!name)
			return 0;
		if (read_string(im, name, &text) < 0)
			return -1;
		names = reallocarray(out->names, out->n + 1, sizeof(*out->names));
		if (names)
			out->names = names;
		positions = reallocarray(out->sympos, out->n + 1, sizeof(*out->sympos));
		if (positions)
			out->sympos = positions;
		if (!names || !positions) {
			free(text);
			return -1;
		}
		out->names[out->n] = text;
		out->sympos[out->n++] = pos;
	}
	return 0;
}

static int read_objects(const struct image *im, uint64_t objs, struct lp_patch_info *pi)
{
	for (size_t i = 0; objs && i < MAX_ENTRIES; i++) {
		uint64_t at = objs + i * sizeof(struct lp_object), name, funcs, syms, build_id;
		struct lp_patch_object *obj;

		if (!read_ptr(im, at + offsetof(struct lp_object, name), &name) ||
		    !read_ptr(im, at + offsetof(struct lp_object, funcs), &funcs) ||
		    !read_ptr(im, at + offsetof(struct lp_object, syms), &syms) ||
		    !read_ptr(im, at + offsetof(struct lp_object, build_id), &build_id))
			return -1;
		if (!name && !funcs)
			return 0;
		obj = reallocarray(pi->objs, pi->nobjs + 1, sizeof(*pi->objs));
		if (!obj)
			return -1;
		pi->objs = obj;
		obj = &pi->objs[pi->nobjs++];
		*obj = (struct lp_patch_object){0};
		if (read_string(im, name, &obj->name) < 0 ||
		    read_string(im, build_id, &obj->build_id) < 0 ||
		    read_names(im, funcs, sizeof(struct lp_func),
			       offsetof(struct lp_func, old_name),
			       offsetof(struct lp_func, old_sympos), &obj->funcs) < 0 ||
		    read_names(im, syms, sizeof(struct lp_symbol), offsetof(struct lp_symbol, name),
			       offsetof(struct lp_symbol, sympos), &obj->syms) < 0)
			return -1;
	}
	return 0;
}

static int read_info(struct image *im, struct lp_patch_info *pi)
{
	uint64_t desc, objs;
	unsigned int abi;

	if (!find_descriptor(im->elf, &desc)) {
		lp_set_err(im->err, im->errlen, "the patch has no %s", LP_PATCH_SYMBOL);
		return -1;
	}
	if (load_relocs(im) < 0 ||
	    !read_at(im, desc + offsetof(struct lp_patch, abi), &abi, sizeof(abi)) ||
	    abi != LP_ABI_VERSION || !read_ptr(im, desc + offsetof(struct lp_patch, objs), &objs) ||
	    read_objects(im, objs, pi) < 0) {
		if (!im->err[0])
			lp_set_err(im->err, im->errlen, "cannot read the objects the patch names");
		return -1;
	}
	return 0;
}

int lp_patch_info_read(int fd, struct lp_patch_info *pi, char *err, size_t errlen)
{
	struct image im = {.err = err, .errlen = errlen};
	int ret;

	*pi = (struct lp_patch_info){0};
	err[0] = '\0';
	if (lp_elf_check_patch_file(fd, err, errlen) < 0)
		return -1;
	elf_version(EV_CURRENT);
	im.elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!im.elf) {
		lp_set_err(err, errlen, "cannot read the patch: %s", elf_errmsg(-1));
		return -1;
	}
	ret = read_info(&im, pi);
	elf_end(im.elf);
	free(im.relocs);
	if (ret < 0)
		lp_patch_info_free(pi);
	return ret;
}

static void free_names(struct lp_patch_names *names)
{
	for (size_t i = 0; i < names->n; i++)
		free(names->names[i]);
	free(names->names);
	free(names->sympos);
}

void lp_patch_info_free(struct lp_patch_info *pi)
{
	for (size_t i = 0; i < pi->nobjs; i++) {
		struct lp_patch_object *obj = &pi->objs[i];

		free_names(&obj->funcs);
		free_names(&obj->syms);
		free(obj->name);
		free(obj->build_id);
	}
	free(pi->objs);
	*pi = (struct lp_patch_info){0};
}
