// SPDX-License-Identifier: MIT
/*
 * Lookups in the symbols copied by elf.c: by name with the kernel's sympos
 * rule, and by address.  Both use sorted index arrays built once at open.
 */
#include "elf_internal.h"

#include <elf.h>
#include <stdlib.h>
#include <string.h>

/* Compare a base name (no version suffix) with a key of @len bytes. */
static int lp_cmp_base(const struct lp_elf *h, const struct lp_elf_ent *e, const char *key,
		       size_t len)
{
	size_t n = e->baselen < len ? e->baselen : len;
	int c = memcmp(h->names + e->name, key, n);

	if (c)
		return c;
	return (e->baselen > len) - (e->baselen < len);
}

static int lp_by_name_cmp(const void *a, const void *b, void *arg)
{
	const struct lp_elf *h = arg;
	uint32_t ia = *(const uint32_t *)a, ib = *(const uint32_t *)b;
	const struct lp_elf_ent *eb = &h->ents[ib];
	int c = lp_cmp_base(h, &h->ents[ia], h->names + eb->name, eb->baselen);

	/* Ties keep table order so that the Nth match is the Nth in the table. */
	return c ? c : (ia > ib) - (ia < ib);
}

static int lp_by_addr_cmp(const void *a, const void *b, void *arg)
{
	const struct lp_elf *h = arg;
	uint32_t ia = *(const uint32_t *)a, ib = *(const uint32_t *)b;
	uint64_t va = h->ents[ia].value, vb = h->ents[ib].value;

	if (va != vb)
		return (va > vb) - (va < vb);
	return (ia > ib) - (ia < ib);
}

static bool lp_ent_is_func(const struct lp_elf_ent *e)
{
	return e->type == STT_FUNC || e->type == STT_GNU_IFUNC;
}

/* End of a function for containment; a sizeless one covers its first byte. */
static uint64_t lp_ent_end(const struct lp_elf_ent *e)
{
	return e->value + (e->size ? e->size : 1);
}

static int lp_build_func_index(struct lp_elf *h)
{
	size_t i, n = 0;

	for (i = 0; i < h->nents; i++)
		n += lp_ent_is_func(&h->ents[i]);
	h->funcs = malloc((n ? n : 1) * sizeof(*h->funcs));
	h->func_maxend = malloc((n ? n : 1) * sizeof(*h->func_maxend));
	if (!h->funcs || !h->func_maxend)
		return -1;
	for (i = 0; i < h->nents; i++) {
		if (lp_ent_is_func(&h->ents[i]))
			h->funcs[h->nfuncs++] = (uint32_t)i;
	}
	qsort_r(h->funcs, h->nfuncs, sizeof(*h->funcs), lp_by_addr_cmp, h);
	/* Running maximum: lets lp_elf_func_at stop scanning back early. */
	for (i = 0; i < h->nfuncs; i++) {
		uint64_t end = lp_ent_end(&h->ents[h->funcs[i]]);

		if (i && h->func_maxend[i - 1] > end)
			end = h->func_maxend[i - 1];
		h->func_maxend[i] = end;
	}
	return 0;
}

int lp_elf_build_index(struct lp_elf *h)
{
	size_t i;

	if (h->nents > UINT32_MAX)
		return -1;
	h->by_name = malloc((h->nents ? h->nents : 1) * sizeof(*h->by_name));
	if (!h->by_name)
		return -1;
	for (i = 0; i < h->nents; i++)
		h->by_name[i] = (uint32_t)i;
	qsort_r(h->by_name, h->nents, sizeof(*h->by_name), lp_by_name_cmp, h);
	return lp_build_func_index(h);
}

/* First position in by_name whose base name is not below the key. */
static size_t lp_lower_bound(const struct lp_elf *h, const char *key, size_t len)
{
	size_t lo = 0, hi = h->nents;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (lp_cmp_base(h, &h->ents[h->by_name[mid]], key, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void lp_fill_sym(const struct lp_elf *h, const struct lp_elf_ent *e, struct lp_elf_sym *out)
{
	out->addr = (uintptr_t)(e->value + h->bias);
	out->size = (size_t)e->size;
	out->is_func = lp_ent_is_func(e);
	out->is_ifunc = e->type == STT_GNU_IFUNC;
	out->table = h->table;
}

int lp_elf_find(struct lp_elf *elf, const char *name, unsigned long sympos, struct lp_elf_sym *out,
		char *err, size_t errlen)
{
	/* "foo@VER" and "foo@@VER" must match exactly; "foo" matches any version. */
	size_t len = strcspn(name, "@"), i;
	bool exact = name[len] == '@';
	const struct lp_elf_ent *pick = NULL;
	unsigned long count = 0;

	for (i = lp_lower_bound(elf, name, len); i < elf->nents; i++) {
		const struct lp_elf_ent *e = &elf->ents[elf->by_name[i]];

		if (lp_cmp_base(elf, e, name, len) != 0)
			break;
		if (exact && strcmp(elf->names + e->name, name) != 0)
			continue;
		if (++count == sympos || (sympos == 0 && count == 1))
			pick = e;
	}
	if (count == 0) {
		lp_set_err(err, errlen, "symbol '%s' not found in %s%s", name, elf->path,
			   elf->table ? "" : " (it has no symbol table)");
		return -1;
	}
	if (sympos == 0 && count > 1) {
		lp_set_err(err, errlen,
			   "symbol '%s' is ambiguous in %s: %lu matches, set old_sympos", name,
			   elf->path, count);
		return -1;
	}
	if (!pick) {
		lp_set_err(err, errlen, "symbol '%s' position %lu not found in %s (%lu matches)",
			   name, sympos, elf->path, count);
		return -1;
	}
	lp_fill_sym(elf, pick, out);
	return 0;
}

/* Global over weak over local, for aliases of one function. */
static int lp_bind_rank(unsigned char bind)
{
	return bind == STB_GLOBAL ? 2 : bind == STB_WEAK ? 1 : 0;
}

/* Whether candidate @a is a better answer than @b for an address @v. */
static bool lp_better(const struct lp_elf_ent *a, const struct lp_elf_ent *b, uint64_t v)
{
	if (!b)
		return true;
	/* Sized symbols are real bounds; a sizeless one is only a label. */
	if (!a->size != !b->size)
		return a->size != 0;
	if ((a->value == v) != (b->value == v))
		return a->value == v;
	/* The closest start is the innermost of nested symbols. */
	if (a->value != b->value)
		return a->value > b->value;
	/* Scanned backwards: on a tie the later one seen is first in the table. */
	return lp_bind_rank(a->bind) >= lp_bind_rank(b->bind);
}

int lp_elf_func_at(struct lp_elf *elf, uintptr_t addr, const char **name, struct lp_elf_sym *out)
{
	const struct lp_elf_ent *best = NULL;
	size_t lo = 0, hi = elf->nfuncs;
	uint64_t v;

	if (addr < elf->bias)
		return -1;
	v = addr - elf->bias;
	/* hi: number of functions starting at or before v. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (elf->ents[elf->funcs[mid]].value <= v)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (hi > 0 && elf->func_maxend[hi - 1] > v) {
		const struct lp_elf_ent *e = &elf->ents[elf->funcs[--hi]];

		if (lp_ent_end(e) > v && lp_better(e, best, v))
			best = e;
	}
	if (!best)
		return -1;
	if (name)
		*name = elf->names + best->name;
	if (out)
		lp_fill_sym(elf, best, out);
	return 0;
}
