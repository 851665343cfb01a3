/* SPDX-License-Identifier: MIT */
/*
 * lp-test-sym - look at a function of a running process, for the tests.
 *
 *   lp-test-sym addr PID FILE SYMBOL [SYMPOS]
 *	print the run-time address of SYMBOL (0x...)
 *   lp-test-sym cmp PID FILE SYMBOL [SYMPOS]
 *	compare the symbol's bytes (st_size of them) in the process's memory
 *	with the bytes of FILE; exit 0 if equal, 1 (naming the first
 *	difference) if not
 *
 * FILE is the ELF file (the program or a library) as mapped in the process;
 * SYMBOL is looked up in .symtab, else .dynsym; SYMPOS (default 1) picks
 * the Nth symbol of that name in table order.  Exit 2 on errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "lp-test-sym: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(2);
}

/* Find the SYMPOS-th symbol NAME in the table of section type TYPE. */
static int find_symbol(Elf *elf, Elf64_Word type, const char *name,
		       unsigned long sympos, GElf_Sym *out)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(elf, scn))) {
		Elf_Data *data;
		unsigned long seen = 0;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != type ||
		    !sh.sh_entsize)
			continue;
		data = elf_getdata(scn, NULL);
		for (size_t i = 0; data && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			const char *n;

			if (!gelf_getsym(data, (int)i, &sym))
				continue;
			n = elf_strptr(elf, sh.sh_link, sym.st_name);
			if (n && strcmp(n, name) == 0 && sym.st_shndx != SHN_UNDEF &&
			    ++seen == sympos) {
				*out = sym;
				return 1;
			}
		}
	}
	return 0;
}

/*
 * The load bias of FILE in process PID: the lowest mapping of the file,
 * matched to the PT_LOAD segment at the same (page-aligned) file offset.
 */
static uint64_t load_bias(const char *pid, const char *path, Elf *elf)
{
	char maps[64], line[PATH_MAX + 256], real[PATH_MAX];
	uint64_t start = 0, off = 0, best = UINT64_MAX, best_off = 0;
	long page = sysconf(_SC_PAGESIZE);
	GElf_Ehdr eh;
	size_t nph;
	FILE *f;

	if (!realpath(path, real))
		die("cannot resolve %s", path);
	if (!gelf_getehdr(elf, &eh))
		die("%s: no ELF header", path);
	if (eh.e_type == ET_EXEC)
		return 0;
	snprintf(maps, sizeof(maps), "/proc/%s/maps", pid);
	f = fopen(maps, "r");
	if (!f)
		die("cannot open %s", maps);
	while (fgets(line, sizeof(line), f)) {
		char file[PATH_MAX] = "";

		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "%" SCNx64 "-%*x %*s %" SCNx64 " %*s %*u %4095[^\n]",
			   &start, &off, file) != 3)
			continue;
		if (strcmp(file, real) == 0 && start < best) {
			best = start;
			best_off = off;
		}
	}
	fclose(f);
	if (best == UINT64_MAX)
		die("%s is not mapped in the process", real);
	if (elf_getphdrnum(elf, &nph))
		die("%s: no program headers", path);
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD &&
		    (ph.p_offset & ~(uint64_t)(page - 1)) == best_off)
			return best - (ph.p_vaddr & ~(uint64_t)(page - 1));
	}
	die("%s: no PT_LOAD for its first mapping", path);
}

/* The file offset of virtual address VADDR of the ELF file. */
static off_t file_offset(Elf *elf, uint64_t vaddr, const char *path)
{
	size_t nph;

	if (elf_getphdrnum(elf, &nph))
		die("%s: no program headers", path);
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD &&
		    vaddr >= ph.p_vaddr && vaddr < ph.p_vaddr + ph.p_filesz)
			return (off_t)(vaddr - ph.p_vaddr + ph.p_offset);
	}
	die("%s: symbol address outside the file's segments", path);
}

int main(int argc, char **argv)
{
	const char *mode, *pid, *path, *name;
	unsigned long sympos = 1;
	uint64_t bias, addr;
	int rc = 0;
	unsigned char *mem, *disk;
	char procmem[64];
	GElf_Sym sym;
	Elf *elf;
	int fd, mfd;

	if (argc < 5 || argc > 6 ||
	    (strcmp(argv[1], "addr") && strcmp(argv[1], "cmp"))) {
		fprintf(stderr, "usage: lp-test-sym addr|cmp PID FILE SYMBOL [SYMPOS]\n");
		return 2;
	}
	mode = argv[1], pid = argv[2], path = argv[3], name = argv[4];
	if (argc == 6)
		sympos = strtoul(argv[5], NULL, 0);

	elf_version(EV_CURRENT);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		die("cannot open %s", path);
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF)
		die("%s is not an ELF file", path);
	if (!find_symbol(elf, SHT_SYMTAB, name, sympos, &sym) &&
	    !find_symbol(elf, SHT_DYNSYM, name, sympos, &sym))
		die("symbol %s not found", name);
	bias = load_bias(pid, path, elf);
	addr = bias + sym.st_value;
	if (strcmp(mode, "addr") == 0) {
		printf("0x%" PRIx64 "\n", addr);
		elf_end(elf);
		close(fd);
		return 0;
	}

	if (!sym.st_size)
		die("symbol %s has no size", name);
	mem = malloc(sym.st_size);
	disk = malloc(sym.st_size);
	snprintf(procmem, sizeof(procmem), "/proc/%s/mem", pid);
	mfd = open(procmem, O_RDONLY);
	if (!mem || !disk || mfd < 0)
		die("cannot read %s", procmem);
	if (pread(mfd, mem, sym.st_size, (off_t)addr) != (ssize_t)sym.st_size)
		die("short read of the process's memory at %s", name);
	if (pread(fd, disk, sym.st_size, file_offset(elf, sym.st_value, path)) !=
	    (ssize_t)sym.st_size)
		die("short read of %s", path);
	for (uint64_t i = 0; i < sym.st_size && rc == 0; i++) {
		if (mem[i] != disk[i]) {
			printf("%s+%" PRIu64 " (0x%" PRIx64 "): memory %02x, file %02x\n",
			       name, i, addr + i, mem[i], disk[i]);
			rc = 1;
		}
	}
	if (rc == 0)
		printf("%s: %" PRIu64 " bytes at 0x%" PRIx64 " equal the file\n", name,
		       (uint64_t)sym.st_size, addr);
	free(mem);
	free(disk);
	close(mfd);
	elf_end(elf);
	close(fd);
	return rc;
}
