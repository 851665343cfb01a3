// SPDX-License-Identifier: MIT
/*
 * Unit tests of src/elf against the fixtures built next to this file and
 * against the system's libc.  nm and readelf (binutils, needed for the build
 * anyway) give the expected symbol order and build-id independently.
 */
#include "elf/lp_elf.h"
#include "../check.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIX_LIB FIX_DIR "/libelffix.so"
#define FIX_STRIPPED FIX_DIR "/libelffix-stripped.so"
#define FIX_DEBUG FIX_DIR "/libelffix.debug"
#define FIX_EXE FIX_DIR "/elffix-exe"
#define FIX_PIE FIX_DIR "/elffix-pie"
#define LIBC "/lib/x86_64-linux-gnu/libc.so.6"
#define NO_DEBUG_ROOT "/nonexistent-debug-root"

#define CHECK_STR(a, b)                                                                 \
	do {                                                                            \
		const char *a_ = (a), *b_ = (b);                                        \
		if (strcmp(a_, b_) != 0) {                                              \
			fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n",   \
				__FILE__, __LINE__, #a, #b, a_, b_);                    \
			check_failures++;                                               \
		}                                                                       \
	} while (0)

/* Addresses of @name in symbol table order, as nm -p prints them. */
static int nm_addrs(const char *path, const char *name, unsigned long *addrs, int max)
{
	char cmd[512], line[1024], sym[512], type;
	unsigned long a;
	int n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "nm -p --defined-only '%s'", path);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	while (fgets(line, sizeof(line), p)) {
		if (sscanf(line, "%lx %c %511s", &a, &type, sym) == 3 && strcmp(sym, name) == 0 &&
		    n < max)
			addrs[n++] = a;
	}
	pclose(p);
	return n;
}

static void readelf_build_id(const char *path, char *out, size_t len)
{
	char cmd[512], line[1024];
	FILE *p;

	out[0] = '\0';
	snprintf(cmd, sizeof(cmd), "readelf -n '%s' 2>/dev/null", path);
	p = popen(cmd, "r");
	if (!p)
		return;
	while (fgets(line, sizeof(line), p)) {
		const char *s = strstr(line, "Build ID: ");

		if (s && sscanf(s + 10, "%127s", out) == 1 && strlen(out) < len)
			break;
	}
	pclose(p);
}

static bool is_hex40(const char *s)
{
	return strlen(s) == 40 && strspn(s, "0123456789abcdef") == 40;
}

static struct lp_elf *must_open(const char *path, uintptr_t bias, const char *root)
{
	char err[256] = "";
	struct lp_elf *e = lp_elf_open(path, bias, root, err, sizeof(err));

	if (!e)
		fprintf(stderr, "lp_elf_open(%s): %s\n", path, err);
	CHECK(e != NULL);
	return e;
}

static uintptr_t find_addr(struct lp_elf *e, const char *name, unsigned long pos)
{
	struct lp_elf_sym s;
	char err[256] = "";

	if (lp_elf_find(e, name, pos, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "lookup of %s/%lu: %s\n", name, pos, err);
		CHECK(0);
		return 0;
	}
	return s.addr;
}

/* The lookup must fail with exactly @msg. */
static void find_fails(struct lp_elf *e, const char *name, unsigned long pos, const char *msg)
{
	struct lp_elf_sym s;
	char err[256] = "";

	CHECK_EQ(lp_elf_find(e, name, pos, &s, err, sizeof(err)), -1);
	CHECK_STR(err, msg);
}

static void test_symtab(void)
{
	struct lp_elf *e = must_open(FIX_LIB, 0, NO_DEBUG_ROOT);
	unsigned long nm[4];
	struct lp_elf_sym s;
	char want[256], err[256];
	const char *name;
	uintptr_t a1, a2;

	if (!e)
		return;
	CHECK_EQ(lp_elf_machine(e), EM_X86_64);
	CHECK(is_hex40(lp_elf_build_id(e)));
	readelf_build_id(FIX_LIB, want, sizeof(want));
	CHECK_STR(lp_elf_build_id(e), want);

	CHECK_EQ(lp_elf_find(e, "fix_global", 0, &s, err, sizeof(err)), 0);
	CHECK(s.is_func && !s.is_ifunc && s.size > 0);
	CHECK_STR(s.table, ".symtab");
	CHECK_EQ(lp_elf_find(e, "fix_var", 0, &s, err, sizeof(err)), 0);
	CHECK(!s.is_func && s.size == sizeof(int));
	CHECK_EQ(lp_elf_find(e, "fix_ifunc", 0, &s, err, sizeof(err)), 0);
	CHECK(s.is_func && s.is_ifunc);
	/* sympos 1 and 2 of a unique name: 1 is the symbol, 2 does not exist. */
	CHECK_EQ(find_addr(e, "fix_global", 1), find_addr(e, "fix_global", 0));
	find_fails(e, "fix_global", 2,
		   "symbol 'fix_global' position 2 not found in " FIX_LIB " (1 matches)");

	find_fails(e, "dup_helper", 0,
		   "symbol 'dup_helper' is ambiguous in " FIX_LIB ": 2 matches, set old_sympos");
	a1 = find_addr(e, "dup_helper", 1);
	a2 = find_addr(e, "dup_helper", 2);
	CHECK(a1 != a2);
	CHECK_EQ(nm_addrs(FIX_LIB, "dup_helper", nm, 4), 2);
	CHECK_EQ(a1, nm[0]);
	CHECK_EQ(a2, nm[1]);
	find_fails(e, "dup_helper", 3,
		   "symbol 'dup_helper' position 3 not found in " FIX_LIB " (2 matches)");

	find_fails(e, "no_such_symbol", 0, "symbol 'no_such_symbol' not found in " FIX_LIB);
	/* TLS, undefined and prefix-only names are not symbols we patch. */
	find_fails(e, "fix_tls", 0, "symbol 'fix_tls' not found in " FIX_LIB);
	find_fails(e, "__cxa_finalize", 0, "symbol '__cxa_finalize' not found in " FIX_LIB);
	find_fails(e, "fix_glob", 0, "symbol 'fix_glob' not found in " FIX_LIB);
	find_fails(e, "", 0, "symbol '' not found in " FIX_LIB);

	/* func_at: inside, at the start, and outside any function. */
	CHECK_EQ(lp_elf_func_at(e, a2 + 1, &name, &s), 0);
	CHECK_STR(name, "dup_helper");
	CHECK_EQ(s.addr, a2);
	CHECK_EQ(lp_elf_func_at(e, a1, &name, NULL), 0);
	CHECK_STR(name, "dup_helper");
	CHECK_EQ(lp_elf_func_at(e, find_addr(e, "fix_var", 0), &name, &s), -1);
	CHECK_EQ(lp_elf_func_at(e, 0, &name, &s), -1);
	lp_elf_close(e);
}

static void test_bias(void)
{
	const uintptr_t bias = 0x7f0000000000;
	struct lp_elf *e0 = must_open(FIX_LIB, 0, NULL);
	struct lp_elf *e = must_open(FIX_LIB, bias, NULL);
	const char *name = NULL;
	struct lp_elf_sym s;
	uintptr_t a;

	if (!e0 || !e)
		goto out;
	a = find_addr(e, "fix_other", 0);
	CHECK_EQ(a, find_addr(e0, "fix_other", 0) + bias);
	CHECK_EQ(find_addr(e, "fix_var", 0), find_addr(e0, "fix_var", 0) + bias);
	CHECK_EQ(lp_elf_func_at(e, a + 2, &name, &s), 0);
	CHECK_STR(name ? name : "", "fix_other");
	CHECK_EQ(s.addr, a);
	CHECK_EQ(lp_elf_func_at(e, a - bias, &name, &s), -1);
out:
	lp_elf_close(e0);
	lp_elf_close(e);
}

static void test_dynsym(void)
{
	struct lp_elf *full = must_open(FIX_LIB, 0, NULL);
	struct lp_elf *e = must_open(FIX_STRIPPED, 0, NO_DEBUG_ROOT);
	struct lp_elf_sym s;
	char err[256];

	if (!full || !e)
		goto out;
	CHECK_STR(lp_elf_build_id(e), lp_elf_build_id(full));
	CHECK_EQ(lp_elf_find(e, "fix_global", 0, &s, err, sizeof(err)), 0);
	CHECK_STR(s.table, ".dynsym");
	CHECK_EQ(s.addr, find_addr(full, "fix_global", 0));
	CHECK_EQ(find_addr(e, "fix_var", 0), find_addr(full, "fix_var", 0));
	find_fails(e, "dup_helper", 0, "symbol 'dup_helper' not found in " FIX_STRIPPED);
out:
	lp_elf_close(full);
	lp_elf_close(e);
}

/* Lay out @root/.build-id/xx/yyyy.debug -> FIX_DEBUG; returns 0 or -1. */
static int make_debug_tree(const char *root, const char *id, char *link, size_t len)
{
	char dir[256];

	snprintf(dir, sizeof(dir), "%s/.build-id", root);
	if (mkdir(dir, 0700) < 0)
		return -1;
	snprintf(dir, sizeof(dir), "%s/.build-id/%.2s", root, id);
	if (mkdir(dir, 0700) < 0)
		return -1;
	snprintf(link, len, "%s/%s.debug", dir, id + 2);
	return symlink(FIX_DEBUG, link);
}

static void remove_debug_tree(const char *root, const char *id, const char *link)
{
	char dir[256];

	unlink(link);
	snprintf(dir, sizeof(dir), "%s/.build-id/%.2s", root, id);
	rmdir(dir);
	snprintf(dir, sizeof(dir), "%s/.build-id", root);
	rmdir(dir);
	rmdir(root);
}

static void test_debuginfo(void)
{
	struct lp_elf *full = must_open(FIX_LIB, 0, NULL);
	char root[] = "/tmp/lp-elf-test.XXXXXX", link[512] = "", id[130];
	struct lp_elf *e = NULL;
	struct lp_elf_sym s;
	char err[256];

	if (!full || !mkdtemp(root))
		goto out;
	snprintf(id, sizeof(id), "%s", lp_elf_build_id(full));
	CHECK_EQ(make_debug_tree(root, id, link, sizeof(link)), 0);
	e = must_open(FIX_STRIPPED, 0, root);
	if (e) {
		CHECK_EQ(lp_elf_find(e, "dup_helper", 2, &s, err, sizeof(err)), 0);
		CHECK_STR(s.table, "debuginfo");
		CHECK_EQ(s.addr, find_addr(full, "dup_helper", 2));
		CHECK_EQ(find_addr(e, "dup_helper", 1), find_addr(full, "dup_helper", 1));
		CHECK_EQ(find_addr(e, "fix_global", 0), find_addr(full, "fix_global", 0));
	}
	remove_debug_tree(root, id, link);
out:
	lp_elf_close(full);
	lp_elf_close(e);
}

static void test_open_errors(void)
{
	char err[256] = "";

	CHECK(lp_elf_open("/nonexistent/libx.so", 0, NULL, err, sizeof(err)) == NULL);
	CHECK_STR(err, "cannot open /nonexistent/libx.so: No such file or directory");
	CHECK(lp_elf_open(FIX_DIR "/../../../../meson.build", 0, NULL, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "meson.build is not an ELF file") != NULL);
	CHECK(lp_elf_open(FIX_DEBUG "-missing", 0, NULL, NULL, 0) == NULL);
	lp_elf_close(NULL);
}

/* Write @len bytes of @data to a new temporary file; returns its fd. */
static int temp_file(const void *data, size_t len)
{
	char path[] = "/tmp/lp-elf-test.XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0)
		return -1;
	unlink(path);
	if (write(fd, data, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The contents of @path, malloc'ed. */
static unsigned char *slurp(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *buf;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size);
	if (buf && read(fd, buf, (size_t)st.st_size) != st.st_size) {
		free(buf);
		buf = NULL;
	}
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

/* Check the file at @path, or @len bytes of @data, against @msg (NULL: ok). */
static void check_patch(const char *path, const void *data, size_t len, const char *msg)
{
	int fd = path ? open(path, O_RDONLY) : temp_file(data, len);
	char err[256] = "";

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK_EQ(lp_elf_check_patch_file(fd, err, sizeof(err)), msg ? -1 : 0);
	CHECK_STR(err, msg ? msg : "");
	close(fd);
}

static void test_check_patch_file(void)
{
	static const char text[] = "#!/bin/sh\necho this is not a patch\n";
	unsigned char *lib;
	size_t len = 0;

	check_patch(FIX_LIB, NULL, 0, NULL);
	check_patch(FIX_STRIPPED, NULL, 0, NULL);
	check_patch(FIX_EXE, NULL, 0, "not a shared object");
	check_patch(FIX_PIE, NULL, 0, "not a shared object (a PIE executable)");
	check_patch(NULL, text, sizeof(text) - 1, "not an ELF file");
	check_patch(NULL, "", 0, "not an ELF file (too short)");
	check_patch(NULL, "\177EL", 3, "not an ELF file (too short)");

	lib = slurp(FIX_LIB, &len);
	CHECK(lib != NULL && len > 4096);
	if (!lib)
		return;
	check_patch(NULL, lib, 20, "not an ELF file (too short)");
	check_patch(NULL, lib, sizeof(Elf64_Ehdr) - 1, "not an ELF file (too short)");
	/* Header intact but the dynamic section cut off. */
	check_patch(NULL, lib, 1024, "not an ELF file (truncated)");

	((Elf64_Ehdr *)lib)->e_machine = EM_AARCH64;
	check_patch(NULL, lib, len, "ELF for another architecture (machine 183: AArch64)");
	((Elf64_Ehdr *)lib)->e_machine = EM_386;
	check_patch(NULL, lib, len, "ELF for another architecture (machine 3: i386)");
	((Elf64_Ehdr *)lib)->e_machine = 9999;
	check_patch(NULL, lib, len, "ELF for another architecture (machine 9999: unknown)");
	((Elf64_Ehdr *)lib)->e_machine = EM_X86_64;
	lib[EI_CLASS] = ELFCLASS32;
	check_patch(NULL, lib, len, "not a 64-bit ELF file");
	lib[EI_CLASS] = ELFCLASS64;
	((Elf64_Ehdr *)lib)->e_type = ET_REL;
	check_patch(NULL, lib, len, "not a shared object");
	free(lib);
}

static void test_libc(void)
{
	struct lp_elf *e = must_open(LIBC, 0, NO_DEBUG_ROOT), *dbg = NULL;
	char path[512], want[130];
	const char *name = NULL;
	struct lp_elf_sym s;
	char err[256];
	uintptr_t qsort_addr;
	struct stat st;

	if (!e)
		return;
	readelf_build_id(LIBC, want, sizeof(want));
	CHECK_STR(lp_elf_build_id(e), want);
	CHECK_EQ(lp_elf_find(e, "qsort", 0, &s, err, sizeof(err)), 0);
	CHECK_STR(s.table, ".dynsym");
	CHECK(s.is_func);
	qsort_addr = s.addr;
	/* Versions come from .gnu.version; "name@VER" selects one exactly. */
	CHECK_EQ(find_addr(e, "qsort@@GLIBC_2.2.5", 0), qsort_addr);
	find_fails(e, "qsort@GLIBC_2.2.5", 0, "symbol 'qsort@GLIBC_2.2.5' not found in " LIBC);
	CHECK(find_addr(e, "pthread_kill@@GLIBC_2.34", 0) !=
	      find_addr(e, "pthread_kill@GLIBC_2.2.5", 0));
	find_fails(e, "pthread_kill", 0,
		   "symbol 'pthread_kill' is ambiguous in " LIBC ": 2 matches, set old_sympos");
	CHECK_EQ(lp_elf_func_at(e, qsort_addr + 4, &name, NULL), 0);
	CHECK_STR(name ? name : "", "qsort@@GLIBC_2.2.5");

	snprintf(path, sizeof(path), "/usr/lib/debug/.build-id/%.2s/%s.debug", want, want + 2);
	if (stat(path, &st) == 0) {
		dbg = must_open(LIBC, 0, NULL);
		if (!dbg)
			goto out;
		CHECK_EQ(lp_elf_find(dbg, "qsort", 0, &s, err, sizeof(err)), 0);
		CHECK_STR(s.table, "debuginfo");
		CHECK_EQ(s.addr, qsort_addr);
		/* Static functions exist only in the debuginfo. */
		CHECK(find_addr(dbg, "__libc_start_call_main", 0) != 0);
		find_fails(e, "__libc_start_call_main", 0,
			   "symbol '__libc_start_call_main' not found in " LIBC);
		CHECK_EQ(find_addr(dbg, "pthread_kill@@GLIBC_2.34", 0),
			 find_addr(e, "pthread_kill@@GLIBC_2.34", 0));
		CHECK_EQ(lp_elf_func_at(dbg, qsort_addr + 4, &name, NULL), 0);
		CHECK_STR(name ? name : "", "qsort");
	} else {
		fprintf(stderr, "test_elf: %s not installed, debuginfo part skipped\n", path);
	}
out:
	lp_elf_close(dbg);
	lp_elf_close(e);
}

/* Handles are independent: open and search libc from several threads. */
static void *thread_main(void *arg)
{
	struct lp_elf *e = lp_elf_open(LIBC, 0x1000, NULL, NULL, 0);
	struct lp_elf_sym s;
	uintptr_t *out = arg;

	*out = 0;
	if (e && lp_elf_find(e, "qsort", 0, &s, NULL, 0) == 0)
		*out = s.addr;
	lp_elf_close(e);
	return NULL;
}

static void test_threads(void)
{
	pthread_t t[4];
	uintptr_t addr[4];
	int i;

	for (i = 0; i < 4; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, thread_main, &addr[i]), 0);
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK(addr[i] != 0);
		CHECK_EQ(addr[i], addr[0]);
	}
}

int main(void)
{
	test_symtab();
	test_bias();
	test_dynsym();
	test_debuginfo();
	test_open_errors();
	test_check_patch_file();
	test_libc();
	test_threads();
	return CHECK_DONE();
}
