/* SPDX-License-Identifier: MIT */
/*
 * Symbol resolution for one ELF object of the process: the main program or a
 * shared library, read from its file (and its separate debuginfo, found by
 * build-id, when installed).  Used by the runtime inside the target and by
 * the CLI.  Nothing here touches the object's memory.
 */
#ifndef LP_ELF_H
#define LP_ELF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lp_elf;

struct lp_elf_sym {
	uintptr_t addr;	   /* run-time address: st_value + bias */
	size_t size;	   /* st_size */
	bool is_func;	   /* STT_FUNC or STT_GNU_IFUNC */
	bool is_ifunc;	   /* STT_GNU_IFUNC: addr is the resolver */
	const char *table; /* ".symtab", ".dynsym", or "debuginfo" */
};

/*
 * Open the ELF file at @path, loaded at @bias (link_map l_addr; 0 for a
 * non-PIE main program).  Looks for a separate debuginfo file by build-id
 * under @debug_root (NULL: "/usr/lib/debug") when the file itself has no
 * .symtab.  On failure returns NULL and writes a one-line reason to @err.
 * Only executables and shared objects are accepted (not ET_REL or cores).
 * The symbols are copied, so the handle keeps no file open; handles are
 * independent and may be used from different threads.  @err may be NULL.
 */
struct lp_elf *lp_elf_open(const char *path, uintptr_t bias, const char *debug_root, char *err,
			   size_t errlen);
void lp_elf_close(struct lp_elf *elf);

/* The GNU build-id as lowercase hex, or "" when the file has none. */
const char *lp_elf_build_id(const struct lp_elf *elf);

/* e_machine of the file (EM_X86_64 expected). */
int lp_elf_machine(const struct lp_elf *elf);

/*
 * Find a defined function or data symbol by name with the kernel's sympos
 * rule: @sympos 0 requires exactly one symbol of that name (else the error
 * says it is ambiguous and how many there are), @sympos N >= 1 picks the
 * Nth in table order.  The table is .symtab (from the file or its
 * debuginfo) when there is one, else .dynsym.  Symbol version suffixes
 * ("puts@@GLIBC_2.2.5") are not part of the name: "puts" matches every
 * version of puts (each one counts for @sympos), while a @name containing
 * '@' matches only the symbol with exactly that version, in .symtab as in
 * .dynsym (whose versions come from .gnu.version).  TLS, NOTYPE, undefined
 * and SHN_ABS symbols are never found.  Returns 0 or -1 with a one-line
 * reason in @err ("symbol 'foo' not found in /usr/bin/x"); @err may be NULL.
 */
int lp_elf_find(struct lp_elf *elf, const char *name, unsigned long sympos, struct lp_elf_sym *out,
		char *err, size_t errlen);

/*
 * The function symbol whose [addr, addr + size) contains @addr, for
 * reports and for the bounds of a function to analyse.  Sized symbols win
 * over sizeless ones (which only match their first byte), then one starting
 * exactly at @addr, then the innermost, then global over weak over local.
 * *@name (it may end in "@VERSION" or "@@VERSION") lives as long as the
 * handle.  @name and @out may be NULL.  Returns 0 or -1.
 */
int lp_elf_func_at(struct lp_elf *elf, uintptr_t addr, const char **name, struct lp_elf_sym *out);

/*
 * Call @fn for every symbol of the file at @path that the dynamic loader
 * finds by its plain name (a defined global or weak function, not an
 * IFUNC, or variable of default visibility and version), with its st_value,
 * in .dynsym order, until @fn returns non-zero.  Returns that value, 0, or
 * -1 when the file or its .dynsym cannot be read.
 */
typedef int (*lp_elf_export_fn)(const char *name, uint64_t value, void *arg);
int lp_elf_each_export(const char *path, lp_elf_export_fn fn, void *arg);

/*
 * Check a file before it is loaded as a patch: an ELF64 shared object for
 * x86-64, and not a PIE executable (ET_DYN too, but dlopen refuses it).
 * @fd is read with pread only.  Returns 0 or -1 with a reason that does not
 * name the file (the caller knows it): "not an ELF file", "not an ELF file
 * (too short)", "not a 64-bit ELF file", "ELF for another architecture
 * (machine 183: AArch64)", "not a shared object", ...
 */
int lp_elf_check_patch_file(int fd, char *err, size_t errlen);

#endif /* LP_ELF_H */
