// SPDX-License-Identifier: MIT
/*
 * A cheap sanity check of a patch file before dlopen(): dlopen's own errors
 * for a wrong file ("invalid ELF header", "wrong ELF class") are vague, and
 * it would run the constructors of an executable it wrongly accepts.
 */
#include "elf_internal.h"

#include <elf.h>
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Upper bound for the dynamic section we scan for DF_1_PIE. */
#define LP_MAX_DYNAMIC (1 << 20)

static const struct {
	int machine;
	const char *name;
} lp_machines[] = {
    {EM_386, "i386"},	     {EM_ARM, "ARM"},
    {EM_AARCH64, "AArch64"}, {EM_RISCV, "RISC-V"},
    {EM_PPC, "PowerPC"},     {EM_PPC64, "PowerPC64"},
    {EM_S390, "s390"},	     {EM_MIPS, "MIPS"},
    {EM_SPARCV9, "SPARC64"}, {EM_LOONGARCH, "LoongArch"},
    {EM_IA_64, "IA-64"},     {EM_X86_64, "x86-64"},
};

static const char *lp_machine_name(int machine)
{
	size_t i;

	for (i = 0; i < sizeof(lp_machines) / sizeof(lp_machines[0]); i++) {
		if (lp_machines[i].machine == machine)
			return lp_machines[i].name;
	}
	return "unknown";
}

/* pread until @len bytes or end of file; returns the count or -1. */
static ssize_t lp_pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* Read exactly @len bytes at @off: 0, or -1 when the file is shorter. */
static int lp_pread_exact(int fd, void *buf, size_t len, uint64_t off)
{
	if (off > (uint64_t)INT64_MAX - len)
		return -1;
	return lp_pread_full(fd, buf, len, (off_t)off) == (ssize_t)len ? 0 : -1;
}

/* 1 when the dynamic section at @ph has DF_1_PIE, 0 if not, -1 if unreadable. */
static int lp_dynamic_is_pie(int fd, const Elf64_Phdr *ph)
{
	size_t n = ph->p_filesz / sizeof(Elf64_Dyn), i;
	Elf64_Dyn *dyn;
	int ret = 0;

	if (ph->p_filesz > LP_MAX_DYNAMIC)
		return -1;
	dyn = malloc(n ? n * sizeof(*dyn) : 1);
	if (!dyn)
		return -1;
	if (lp_pread_exact(fd, dyn, n * sizeof(*dyn), ph->p_offset) < 0)
		ret = -1;
	for (i = 0; ret == 0 && i < n && dyn[i].d_tag != DT_NULL; i++) {
		if (dyn[i].d_tag == DT_FLAGS_1 && (dyn[i].d_un.d_val & DF_1_PIE))
			ret = 1;
	}
	free(dyn);
	return ret;
}

/*
 * A PIE executable is ET_DYN too, but glibc refuses to dlopen it; say so
 * before trying.  Returns 1 for a PIE, 0 if not, -1 when truncated.
 */
static int lp_is_pie(int fd, const Elf64_Ehdr *eh)
{
	Elf64_Phdr ph;
	unsigned int i;

	if (eh->e_phnum && eh->e_phentsize != sizeof(ph))
		return -1;
	for (i = 0; i < eh->e_phnum; i++) {
		if (lp_pread_exact(fd, &ph, sizeof(ph), eh->e_phoff + (uint64_t)i * sizeof(ph)) < 0)
			return -1;
		if (ph.p_type == PT_DYNAMIC)
			return lp_dynamic_is_pie(fd, &ph);
	}
	return 0;
}

/* The parts of the header that do not depend on the byte order. */
static int lp_check_ident(const unsigned char *id, ssize_t n, char *err, size_t errlen)
{
	size_t magic = n < SELFMAG ? (size_t)n : SELFMAG;

	if (memcmp(id, ELFMAG, magic) != 0) {
		lp_set_err(err, errlen, "not an ELF file");
		return -1;
	}
	if (n < (ssize_t)sizeof(Elf64_Ehdr) && (n < EI_NIDENT || id[EI_CLASS] == ELFCLASS64)) {
		lp_set_err(err, errlen, "not an ELF file (too short)");
		return -1;
	}
	if (id[EI_CLASS] != ELFCLASS64) {
		lp_set_err(err, errlen, "not a 64-bit ELF file");
		return -1;
	}
	if (id[EI_DATA] != ELFDATA2LSB && id[EI_DATA] != ELFDATA2MSB) {
		lp_set_err(err, errlen, "not an ELF file (bad byte order)");
		return -1;
	}
	return 0;
}

int lp_elf_check_patch_file(int fd, char *err, size_t errlen)
{
	Elf64_Ehdr eh;
	ssize_t n = lp_pread_full(fd, &eh, sizeof(eh), 0);
	int machine, pie;

	if (n < 0) {
		lp_set_err(err, errlen, "cannot read the file: %s", strerror(errno));
		return -1;
	}
	if (lp_check_ident(eh.e_ident, n, err, errlen) < 0)
		return -1;
	/* Big-endian machines (s390x, ppc64) are named too, so decode both. */
	machine =
	    eh.e_ident[EI_DATA] == ELFDATA2LSB ? le16toh(eh.e_machine) : be16toh(eh.e_machine);
	if (machine != EM_X86_64 || eh.e_ident[EI_DATA] != ELFDATA2LSB) {
		lp_set_err(err, errlen, "ELF for another architecture (machine %d: %s%s)", machine,
			   lp_machine_name(machine),
			   eh.e_ident[EI_DATA] == ELFDATA2LSB ? "" : ", big-endian");
		return -1;
	}
	if (eh.e_type != ET_DYN) {
		lp_set_err(err, errlen, "not a shared object");
		return -1;
	}
	pie = lp_is_pie(fd, &eh);
	if (pie != 0) {
		lp_set_err(err, errlen,
			   pie > 0 ? "not a shared object (a PIE executable)"
				   : "not an ELF file (truncated)");
		return -1;
	}
	return 0;
}
