// SPDX-License-Identifier: MIT
/*
 * Opening an ELF object: its header, build-id and symbol table.  The symbol
 * table is copied into the handle and the file closed again, so a handle costs
 * no descriptor and no mapping while it lives.
 */
#include "elf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LP_DEFAULT_DEBUG_ROOT "/usr/lib/debug"

/* .gnu.version entries: bit 15 marks a non-default ("@") version. */
#define LP_VERSYM_HIDDEN 0x8000
#define LP_VERSYM_INDEX	 0x7fff

/* Version definitions of a .dynsym: index -> name, for "name@@VER". */
struct lp_verdef {
	unsigned int ndx;
	const char *name;
};

struct lp_versions {
	Elf_Data *versym;
	struct lp_verdef *defs;
	size_t ndefs;
};

/* A file opened for libelf; both parts are released by lp_file_close(). */
struct lp_file {
	int fd;
	Elf *elf;
};

static void lp_file_close(struct lp_file *f)
{
	if (f->elf)
		elf_end(f->elf);
	if (f->fd >= 0)
		close(f->fd);
	f->elf = NULL;
	f->fd = -1;
}

static int lp_file_open(struct lp_file *f, const char *path, char *err, size_t errlen)
{
	f->elf = NULL;
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0) {
		lp_set_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	f->elf = elf_begin(f->fd, ELF_C_READ_MMAP, NULL);
	if (!f->elf) {
		lp_set_err(err, errlen, "cannot read %s: %s", path, elf_errmsg(-1));
		lp_file_close(f);
		return -1;
	}
	if (elf_kind(f->elf) != ELF_K_ELF) {
		lp_set_err(err, errlen, "%s is not an ELF file", path);
		lp_file_close(f);
		return -1;
	}
	return 0;
}

/* Section data, decompressed when the section is SHF_COMPRESSED. */
static Elf_Data *lp_scn_data(Elf_Scn *scn)
{
	GElf_Shdr shdr;

	if (!gelf_getshdr(scn, &shdr))
		return NULL;
	if ((shdr.sh_flags & SHF_COMPRESSED) && elf_compress(scn, 0, 0) < 0)
		return NULL;
	return elf_getdata(scn, NULL);
}

static Elf_Scn *lp_find_scn(Elf *e, GElf_Word type)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr shdr;

	while ((scn = elf_nextscn(e, scn)) != NULL) {
		if (gelf_getshdr(scn, &shdr) && shdr.sh_type == type)
			return scn;
	}
	return NULL;
}

static void lp_hex(char *out, const unsigned char *bytes, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 0xf];
	}
	out[2 * n] = '\0';
}

/* Look for NT_GNU_BUILD_ID in one block of notes; returns true when found. */
static bool lp_notes_build_id(Elf_Data *data, char *out)
{
	size_t off = 0, name_off, desc_off, next;
	GElf_Nhdr nhdr;

	if (!data)
		return false;
	while ((next = gelf_getnote(data, off, &nhdr, &name_off, &desc_off)) > 0) {
		const char *buf = data->d_buf;

		if (nhdr.n_type == NT_GNU_BUILD_ID && nhdr.n_namesz == sizeof(ELF_NOTE_GNU) &&
		    memcmp(buf + name_off, ELF_NOTE_GNU, sizeof(ELF_NOTE_GNU)) == 0 &&
		    nhdr.n_descsz > 0 && nhdr.n_descsz <= LP_ELF_BUILD_ID_MAX) {
			lp_hex(out, (const unsigned char *)buf + desc_off, nhdr.n_descsz);
			return true;
		}
		off = next;
	}
	return false;
}

/* From the note sections, or from PT_NOTE when section headers are gone. */
static void lp_read_build_id(Elf *e, char *out)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr shdr;
	GElf_Phdr phdr;
	size_t i, phnum;

	out[0] = '\0';
	while ((scn = elf_nextscn(e, scn)) != NULL) {
		if (gelf_getshdr(scn, &shdr) && shdr.sh_type == SHT_NOTE &&
		    lp_notes_build_id(elf_getdata(scn, NULL), out))
			return;
	}
	if (elf_getphdrnum(e, &phnum) < 0)
		return;
	for (i = 0; i < phnum; i++) {
		Elf_Type t;

		if (!gelf_getphdr(e, (int)i, &phdr) || phdr.p_type != PT_NOTE)
			continue;
		t = phdr.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR;
		if (lp_notes_build_id(
			elf_getdata_rawchunk(e, (int64_t)phdr.p_offset, phdr.p_filesz, t), out))
			return;
	}
}

/* Collect the version definitions (.gnu.version_d) next to a .dynsym. */
static int lp_versions_load(Elf *e, struct lp_versions *v)
{
	Elf_Scn *vs = lp_find_scn(e, SHT_GNU_versym);
	Elf_Scn *vd = lp_find_scn(e, SHT_GNU_verdef);
	GElf_Shdr shdr;
	Elf_Data *data;
	size_t off = 0, n;

	memset(v, 0, sizeof(*v));
	if (!vs || !vd || !gelf_getshdr(vd, &shdr))
		return 0;
	v->versym = elf_getdata(vs, NULL);
	data = elf_getdata(vd, NULL);
	if (!v->versym || !data || !shdr.sh_info)
		return 0;
	v->defs = calloc(shdr.sh_info, sizeof(*v->defs));
	if (!v->defs)
		return -1;
	for (n = 0; n < shdr.sh_info; n++) {
		GElf_Verdef def;
		GElf_Verdaux aux;

		if (!gelf_getverdef(data, (int)off, &def) ||
		    !gelf_getverdaux(data, (int)(off + def.vd_aux), &aux))
			break;
		/* The base definition names the object itself, not a version. */
		if (!(def.vd_flags & VER_FLG_BASE)) {
			v->defs[v->ndefs].ndx = def.vd_ndx;
			v->defs[v->ndefs].name = elf_strptr(e, shdr.sh_link, aux.vda_name);
			if (v->defs[v->ndefs].name)
				v->ndefs++;
		}
		if (!def.vd_next)
			break;
		off += def.vd_next;
	}
	return 0;
}

/* The "@VER" or "@@VER" suffix of dynamic symbol @i, or NULL. */
static const char *lp_version_of(const struct lp_versions *v, size_t i, bool *hidden)
{
	GElf_Versym vs;
	size_t k;

	if (!v->versym || !gelf_getversym(v->versym, (int)i, &vs))
		return NULL;
	*hidden = vs & LP_VERSYM_HIDDEN;
	vs &= LP_VERSYM_INDEX;
	for (k = 0; k < v->ndefs; k++) {
		if (v->defs[k].ndx == vs)
			return v->defs[k].name;
	}
	return NULL;
}

/* Append one name, with an optional version suffix; returns its offset. */
static int lp_add_name(struct lp_elf *h, const char *name, const char *ver, bool hidden,
		       uint32_t *off)
{
	size_t len = strlen(name), vlen = ver ? strlen(ver) + (hidden ? 1 : 2) : 0;
	size_t need = h->names_len + len + vlen + 1;

	if (need > UINT32_MAX)
		return -1;
	if (need > h->names_cap) {
		size_t cap = h->names_cap ? h->names_cap : 4096;
		char *p;

		while (cap < need)
			cap *= 2;
		p = realloc(h->names, cap);
		if (!p)
			return -1;
		h->names = p;
		h->names_cap = cap;
	}
	*off = (uint32_t)h->names_len;
	if (ver)
		sprintf(h->names + h->names_len, "%s%s%s", name, hidden ? "@" : "@@", ver);
	else
		memcpy(h->names + h->names_len, name, len + 1);
	h->names_len = need;
	return 0;
}

static bool lp_wanted(const GElf_Sym *sym)
{
	unsigned char type = GELF_ST_TYPE(sym->st_info);

	/* SHN_ABS values are not addresses inside the object. */
	if (sym->st_shndx == SHN_UNDEF || sym->st_shndx == SHN_ABS)
		return false;
	return type == STT_FUNC || type == STT_GNU_IFUNC || type == STT_OBJECT;
}

/* Copy the wanted symbols of @scn (a SYMTAB or DYNSYM section) into @h. */
static int lp_load_symbols(struct lp_elf *h, Elf *e, Elf_Scn *scn, const char *table)
{
	struct lp_versions ver = {0};
	Elf_Data *data = lp_scn_data(scn);
	size_t entsize = gelf_fsize(e, ELF_T_SYM, 1, EV_CURRENT);
	GElf_Shdr shdr;
	size_t i, n;
	int ret = -1;

	if (!data || !entsize || !gelf_getshdr(scn, &shdr))
		return -1;
	n = data->d_size / entsize;
	if (shdr.sh_type == SHT_DYNSYM && lp_versions_load(e, &ver) < 0)
		return -1;
	h->ents = calloc(n ? n : 1, sizeof(*h->ents));
	if (!h->ents)
		goto out;
	for (i = 1; i < n; i++) {
		struct lp_elf_ent *ent = &h->ents[h->nents];
		const char *name, *vname = NULL;
		bool hidden = false;
		GElf_Sym sym;

		if (!gelf_getsym(data, (int)i, &sym) || !lp_wanted(&sym))
			continue;
		name = elf_strptr(e, shdr.sh_link, sym.st_name);
		if (!name || !*name)
			continue;
		if (shdr.sh_type == SHT_DYNSYM)
			vname = lp_version_of(&ver, i, &hidden);
		if (lp_add_name(h, name, vname, hidden, &ent->name) < 0)
			goto out;
		ent->baselen = (uint32_t)strcspn(name, "@");
		ent->value = sym.st_value;
		ent->size = sym.st_size;
		ent->type = GELF_ST_TYPE(sym.st_info);
		ent->bind = GELF_ST_BIND(sym.st_info);
		h->nents++;
	}
	h->table = table;
	ret = 0;
out:
	free(ver.defs);
	return ret;
}

/*
 * The separate debuginfo of a stripped file, by build-id.  Any problem with
 * it only means we fall back to .dynsym, so failures are not reported.
 */
static int lp_load_debuginfo(struct lp_elf *h, const char *debug_root)
{
	struct lp_file f;
	char path[4096], id[sizeof(h->build_id)];
	Elf_Scn *scn;
	int ret = -1;

	if (strlen(h->build_id) < 4)
		return -1;
	if (snprintf(path, sizeof(path), "%s/.build-id/%.2s/%s.debug",
		     debug_root ? debug_root : LP_DEFAULT_DEBUG_ROOT, h->build_id,
		     h->build_id + 2) >= (int)sizeof(path))
		return -1;
	if (lp_file_open(&f, path, NULL, 0) < 0)
		return -1;
	/* A stale link to another build would give wrong addresses. */
	lp_read_build_id(f.elf, id);
	scn = lp_find_scn(f.elf, SHT_SYMTAB);
	if (scn && strcmp(id, h->build_id) == 0)
		ret = lp_load_symbols(h, f.elf, scn, "debuginfo");
	lp_file_close(&f);
	return ret;
}

static void lp_reset_symbols(struct lp_elf *h)
{
	free(h->ents);
	free(h->names);
	h->ents = NULL;
	h->names = NULL;
	h->nents = h->names_len = h->names_cap = 0;
	h->table = NULL;
}

/* .symtab, else debuginfo's .symtab, else .dynsym, else nothing. */
static int lp_load_best_table(struct lp_elf *h, Elf *e, const char *debug_root)
{
	Elf_Scn *scn = lp_find_scn(e, SHT_SYMTAB);

	if (scn)
		return lp_load_symbols(h, e, scn, ".symtab");
	if (lp_load_debuginfo(h, debug_root) == 0)
		return 0;
	lp_reset_symbols(h);
	scn = lp_find_scn(e, SHT_DYNSYM);
	if (scn)
		return lp_load_symbols(h, e, scn, ".dynsym");
	return 0;
}

static int lp_read_header(struct lp_elf *h, Elf *e, char *err, size_t errlen)
{
	GElf_Ehdr ehdr;

	if (!gelf_getehdr(e, &ehdr)) {
		lp_set_err(err, errlen, "cannot read the ELF header of %s: %s", h->path,
			   elf_errmsg(-1));
		return -1;
	}
	if (ehdr.e_type != ET_EXEC && ehdr.e_type != ET_DYN) {
		lp_set_err(err, errlen, "%s is not an executable or shared object (type %u)",
			   h->path, (unsigned int)ehdr.e_type);
		return -1;
	}
	h->machine = ehdr.e_machine;
	return 0;
}

struct lp_elf *lp_elf_open(const char *path, uintptr_t bias, const char *debug_root, char *err,
			   size_t errlen)
{
	struct lp_file f;
	struct lp_elf *h;

	if (elf_version(EV_CURRENT) == EV_NONE) {
		lp_set_err(err, errlen, "cannot read %s: libelf is too old", path);
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (!h || !(h->path = strdup(path))) {
		free(h);
		lp_set_err(err, errlen, "cannot read %s: out of memory", path);
		return NULL;
	}
	h->bias = bias;
	if (lp_file_open(&f, path, err, errlen) < 0) {
		lp_elf_close(h);
		return NULL;
	}
	if (lp_read_header(h, f.elf, err, errlen) < 0)
		goto fail;
	lp_read_build_id(f.elf, h->build_id);
	if (lp_load_best_table(h, f.elf, debug_root) < 0 || lp_elf_build_index(h) < 0) {
		int e = elf_errno();

		lp_set_err(err, errlen, "cannot read the symbols of %s: %s", path,
			   e ? elf_errmsg(e) : "out of memory");
		goto fail;
	}
	lp_file_close(&f);
	return h;
fail:
	lp_file_close(&f);
	lp_elf_close(h);
	return NULL;
}

void lp_elf_close(struct lp_elf *elf)
{
	if (!elf)
		return;
	lp_reset_symbols(elf);
	free(elf->by_name);
	free(elf->funcs);
	free(elf->func_maxend);
	free(elf->path);
	free(elf);
}

const char *lp_elf_build_id(const struct lp_elf *elf)
{
	return elf->build_id;
}

int lp_elf_machine(const struct lp_elf *elf)
{
	return elf->machine;
}

/*
 * Whether the dynamic loader finds dynamic symbol @sym, numbered @i, by its
 * plain name: defined, global or weak, default visibility, a function (not
 * an IFUNC, whose address a resolver computes) or a variable, and no
 * version or the default one.
 */
static bool lp_is_export(const GElf_Sym *sym, size_t i, Elf_Data *versym)
{
	unsigned char type = GELF_ST_TYPE(sym->st_info), bind = GELF_ST_BIND(sym->st_info);
	GElf_Versym vs;

	if (sym->st_shndx == SHN_UNDEF || sym->st_shndx == SHN_ABS ||
	    (type != STT_FUNC && type != STT_OBJECT) || (bind != STB_GLOBAL && bind != STB_WEAK) ||
	    GELF_ST_VISIBILITY(sym->st_other) != STV_DEFAULT)
		return false;
	return !versym || !gelf_getversym(versym, (int)i, &vs) || !(vs & LP_VERSYM_HIDDEN);
}

int lp_elf_each_export(const char *path, lp_elf_export_fn fn, void *arg)
{
	struct lp_file f;
	Elf_Scn *scn, *vs;
	Elf_Data *data, *versym;
	GElf_Shdr shdr;
	size_t entsize, n;
	int ret = 0;

	if (elf_version(EV_CURRENT) == EV_NONE || lp_file_open(&f, path, NULL, 0) < 0)
		return -1;
	scn = lp_find_scn(f.elf, SHT_DYNSYM);
	vs = lp_find_scn(f.elf, SHT_GNU_versym);
	versym = vs ? elf_getdata(vs, NULL) : NULL;
	data = scn ? elf_getdata(scn, NULL) : NULL;
	entsize = gelf_fsize(f.elf, ELF_T_SYM, 1, EV_CURRENT);
	if (!data || !entsize || !gelf_getshdr(scn, &shdr)) {
		lp_file_close(&f);
		return -1;
	}
	n = data->d_size / entsize;
	for (size_t i = 1; i < n && ret == 0; i++) {
		const char *name;
		GElf_Sym sym;

		if (!gelf_getsym(data, (int)i, &sym) || !lp_is_export(&sym, i, versym))
			continue;
		name = elf_strptr(f.elf, shdr.sh_link, sym.st_name);
		if (name && *name)
			ret = fn(name, sym.st_value, arg);
	}
	lp_file_close(&f);
	return ret;
}
