/* SPDX-License-Identifier: MIT */
/*
 * Private layout of struct lp_elf, shared by the files of src/elf/.  The
 * symbols are copied out of libelf at open time so that lookups need neither
 * the file nor libelf afterwards.
 */
#ifndef LP_ELF_INTERNAL_H
#define LP_ELF_INTERNAL_H

#include "common/err.h"
#include "lp_elf.h"

#include <stdarg.h>
#include <stdint.h>

/* Longest build-id we keep, in bytes (SHA-1 ones are 20). */
#define LP_ELF_BUILD_ID_MAX 64

/* One defined FUNC, GNU_IFUNC or OBJECT symbol, in table order. */
struct lp_elf_ent {
	uint64_t value;	  /* st_value, without the bias */
	uint64_t size;	  /* st_size */
	uint32_t name;	  /* offset of the name in lp_elf.names */
	uint32_t baselen; /* length of the name without its "@VERSION" suffix */
	unsigned char type;
	unsigned char bind;
};

struct lp_elf {
	char *path;
	uintptr_t bias;
	int machine;
	char build_id[LP_ELF_BUILD_ID_MAX * 2 + 1];
	const char *table; /* ".symtab", ".dynsym", "debuginfo" or NULL */

	struct lp_elf_ent *ents;
	size_t nents;
	char *names; /* NUL-terminated names, packed */
	size_t names_len;
	size_t names_cap;

	uint32_t *by_name;     /* ents indices by base name, then table order */
	uint32_t *funcs;       /* function ents indices by address, then table order */
	uint64_t *func_maxend; /* func_maxend[i]: highest end among funcs[0..i] */
	size_t nfuncs;
};

/* Build by_name and funcs once all ents are loaded.  Returns 0 or -1. */
int lp_elf_build_index(struct lp_elf *elf);

#endif /* LP_ELF_INTERNAL_H */
