// SPDX-License-Identifier: MIT
/*
 * What the injection needs to know about the target before it touches any
 * thread, and the reasons it refuses one: a statically linked program, a C
 * library other than glibc (2.34 or later, whose libc has dlopen()), a
 * runtime the process could not load as it is, a process that ignores
 * SIGSEGV (the borrowed thread's calls end in one) or is traced already.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elf/lp_elf.h"
#include "inject/internal.h"

/*
 * The libc functions a thread may be borrowed in, when every frame above
 * them belongs to the application (stack.c): system call wrappers, and
 * stdio's input functions, which hold nothing but the stream's own
 * (recursive) lock while they wait in read().  None of them holds a lock
 * that dlopen(), malloc() or the runtime's constructor takes.  Every
 * symbol of each name counts (versions, aliases share the entry).
 */
static const char *const safe_names[] = {
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "preadv2", "pwritev",
    "pwritev2", "recv", "recvfrom", "recvmsg", "recvmmsg", "send", "sendto", "sendmsg", "sendmmsg",
    "accept", "accept4", "connect", "poll", "ppoll", "select", "pselect", "epoll_wait",
    "epoll_pwait", "epoll_pwait2", "nanosleep", "clock_nanosleep", "sleep", "usleep", "pause",
    "sigsuspend", "sigwaitinfo", "sigtimedwait", "wait", "waitpid", "wait3", "wait4", "waitid",
    "msgrcv", "msgsnd", "semop", "semtimedop", "open", "open64", "openat", "openat64", "close",
    "fsync", "fdatasync", "flock", "fcntl", "fcntl64", "ioctl", "syscall", "splice", "tee",
    "sendfile", "sendfile64", "copy_file_range", "tcdrain",
    /* stdio input, down to the read() of _IO_file_read */
    "fgets", "fgets_unlocked", "getline", "getdelim", "__getdelim", "_IO_getline",
    "_IO_getline_info", "fgetc", "getc", "_IO_getc", "getchar", "fgetc_unlocked", "getc_unlocked",
    "getchar_unlocked", "fread", "fread_unlocked", "__uflow", "__underflow", "_IO_default_uflow",
    "_IO_file_underflow", "_IO_file_read", "_IO_file_xsgetn", "_IO_sgetn"};

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* The path to open a file the process maps at @path: through its root. */
static void root_path(pid_t pid, const char *path, char *buf, size_t size)
{
	snprintf(buf, size, "/proc/%d/root%s", (int)pid, path);
}

/* PT_INTERP of the program ("" when it has none) and the lowest PT_LOAD address of @path. */
static int read_elf(const char *path, char *interp, size_t len, uintptr_t *first_load, char *err,
		    size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	GElf_Ehdr eh;
	size_t nph;
	Elf *elf;
	int ret = -1;

	if (fd < 0) {
		lp_set_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf || !gelf_getehdr(elf, &eh) || elf_getphdrnum(elf, &nph) != 0) {
		lp_set_err(err, errlen, "%s is not an ELF file", path);
		goto out;
	}
	if (eh.e_machine != EM_X86_64) {
		lp_set_err(err, errlen, "it is not an x86-64 program");
		goto out;
	}
	interp[0] = '\0';
	*first_load = UINTPTR_MAX;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph))
			continue;
		if (ph.p_type == PT_LOAD && ph.p_vaddr < *first_load)
			*first_load = ph.p_vaddr & ~(uintptr_t)(ph.p_align ? ph.p_align - 1 : 0);
		if (ph.p_type == PT_INTERP && ph.p_filesz < len &&
		    pread(fd, interp, ph.p_filesz, (off_t)ph.p_offset) == (ssize_t)ph.p_filesz)
			interp[ph.p_filesz] = '\0';
	}
	ret = 0;
out:
	if (elf)
		elf_end(elf);
	close(fd);
	return ret;
}

/* The first mapping of a file whose name is @name (or starts with @prefix). */
static const struct lp_map *find_file(const struct lp_maps *m, const char *name, bool prefix)
{
	for (size_t i = 0; i < m->n; i++) {
		const char *p = m->v[i].path;

		if (p && (prefix ? strncmp(base_name(p), name, strlen(name)) == 0
				 : strcmp(base_name(p), name) == 0))
			return &m->v[i];
	}
	return NULL;
}

/* Statically linked, another C library, an old glibc: say which. */
static int check_libc(struct lp_target *tg, char *err, size_t errlen)
{
	char exe[64], interp[PATH_MAX];
	const struct lp_map *ld, *libc;
	uintptr_t first;

	snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)tg->proc);
	if (read_elf(exe, interp, sizeof(interp), &first, err, errlen) < 0)
		return -1;
	if (!interp[0]) {
		lp_set_err(err, errlen,
			   "it is statically linked: no dynamic loader to load "
			   "the runtime");
		return -1;
	}
	ld = find_file(&tg->maps, base_name(interp), false);
	libc = find_file(&tg->maps, "libc.so.6", false);
	if (strstr(base_name(interp), "musl") || !libc || !ld) {
		lp_set_err(err, errlen, "it does not use glibc (its loader is %s%s)", interp,
			   libc ? "" : ", and it has no libc.so.6");
		return -1;
	}
	tg->ld_path = ld->path;
	tg->libc_path = libc->path;
	return 0;
}

static int cmp_addr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return (x > y) - (x < y);
}

static int find_safe(struct lp_target *tg, char *err, size_t errlen)
{
	size_t cap = 0;

	for (size_t i = 0; i < sizeof(safe_names) / sizeof(safe_names[0]); i++) {
		struct lp_elf_sym sym;

		for (unsigned long pos = 1;
		     lp_elf_find(tg->libc, safe_names[i], pos, &sym, NULL, 0) == 0; pos++) {
			if (tg->nsafe == cap) {
				size_t ncap = cap ? 2 * cap : 128;
				uintptr_t *v = reallocarray(tg->safe, ncap, sizeof(*v));

				if (!v) {
					lp_set_err(err, errlen, "out of memory");
					return -1;
				}
				tg->safe = v;
				cap = ncap;
			}
			tg->safe[tg->nsafe++] = sym.addr;
		}
	}
	if (tg->nsafe)
		qsort(tg->safe, tg->nsafe, sizeof(*tg->safe), cmp_addr);
	return 0;
}

/* libc's symbols, at the address it is loaded at. */
static int open_libc(struct lp_target *tg, char *err, size_t errlen)
{
	const struct lp_map *m = NULL;
	char path[PATH_MAX + 32], interp[8];
	struct lp_elf_sym sym;
	uintptr_t first;

	for (size_t i = 0; i < tg->maps.n && !m; i++)
		if (tg->maps.v[i].path && strcmp(tg->maps.v[i].path, tg->libc_path) == 0 &&
		    tg->maps.v[i].offset == 0)
			m = &tg->maps.v[i];
	if (!m) {
		lp_set_err(err, errlen, "cannot find where libc.so.6 is loaded");
		return -1;
	}
	root_path(tg->proc, tg->libc_path, path, sizeof(path));
	if (read_elf(path, interp, sizeof(interp), &first, err, errlen) < 0)
		return -1;
	tg->libc = lp_elf_open(path, m->lo - first, NULL, err, errlen);
	if (!tg->libc)
		return -1;
	if (lp_elf_find(tg->libc, "dlopen@@GLIBC_2.34", 0, &sym, NULL, 0) < 0) {
		lp_set_err(err, errlen, "its glibc is older than 2.34 (no dlopen() in libc.so.6)");
		return -1;
	}
	tg->dlopen = sym.addr;
	if (lp_elf_find(tg->libc, "dlerror@@GLIBC_2.34", 0, &sym, err, errlen) < 0)
		return -1;
	tg->dlerror = sym.addr;
	if (lp_elf_find(tg->libc, "__errno_location", 0, &sym, err, errlen) < 0)
		return -1;
	tg->errno_location = sym.addr;
	return find_safe(tg, err, errlen);
}

/* The DT_NEEDED entry of @path that starts with @prefix, into @buf; false when none. */
static bool needs(const char *path, const char *prefix, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	Elf_Scn *scn = NULL;
	bool found = false;
	Elf *elf;

	if (fd < 0)
		return false;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	while (elf && !found && (scn = elf_nextscn(elf, scn))) {
		Elf_Data *data = elf_getdata(scn, NULL);
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNAMIC || !data)
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize && !found; i++) {
			GElf_Dyn dyn;
			const char *name;

			if (!gelf_getdyn(data, (int)i, &dyn) || dyn.d_tag != DT_NEEDED)
				continue;
			name = elf_strptr(elf, sh.sh_link, dyn.d_un.d_val);
			if (name && strncmp(name, prefix, strlen(prefix)) == 0) {
				snprintf(buf, len, "%s", name);
				found = true;
			}
		}
	}
	if (elf)
		elf_end(elf);
	close(fd);
	return found;
}

/* Will the process find the very file we mean, and be able to load it as it is? */
static int check_runtime(struct lp_target *tg, const char *runtime, char *err, size_t errlen)
{
	char theirs[PATH_MAX + 32], lib[64];
	struct stat a, b;
	const struct lp_map *loaded = find_file(&tg->maps, "liblpatch.so", false);

	if (loaded) {
		lp_set_err(err, errlen, "it has a runtime loaded already (%s) but no agent",
			   loaded->path);
		return -1;
	}
	root_path(tg->proc, runtime, theirs, sizeof(theirs));
	if (stat(runtime, &a) < 0) {
		lp_set_err(err, errlen, "runtime %s: %s", runtime, strerror(errno));
		return -1;
	}
	if (stat(theirs, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		lp_set_err(err, errlen,
			   "the runtime %s is not the same file at that path for the process "
			   "(another mount namespace?)",
			   runtime);
		return -1;
	}
	/* A sanitizer runtime must come first: loading it late aborts the process. */
	/* It is mapped under its file's name: libasan.so.8 is libasan.so.8.0.0. */
	if (needs(runtime, "libasan.so", lib, sizeof(lib)) && !find_file(&tg->maps, lib, true)) {
		lp_set_err(err, errlen,
			   "the runtime %s is built with AddressSanitizer, and the process "
			   "has not loaded %s",
			   runtime, lib);
		return -1;
	}
	return 0;
}

/* The process as a whole: there, not traced, not ignoring SIGSEGV. */
static int check_process(struct lp_target *tg, char *err, size_t errlen)
{
	char tracer[32];

	if (lp_proc_status(tg->pid, tg->pid, "TracerPid", tracer, sizeof(tracer)) &&
	    atoi(tracer) != 0) {
		lp_set_err(err, errlen, "it is traced by process %s (a debugger?)", tracer);
		return -1;
	}
	if (lp_proc_sigset(tg->pid, tg->pid, "SigIgn") & (1ull << (SIGSEGV - 1))) {
		lp_set_err(err, errlen, "it ignores SIGSEGV, which injecting needs");
		return -1;
	}
	return 0;
}

int lp_target_open(struct lp_target *tg, pid_t pid, const char *runtime, char *err, size_t errlen)
{
	char path[64];

	*tg = (struct lp_target){.pid = pid, .proc = lp_proc_live_thread(pid)};
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)tg->proc);
	tg->mem = open(path, O_RDWR | O_CLOEXEC);
	if (tg->mem < 0) {
		lp_set_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (lp_maps_read(tg->proc, &tg->maps, err, errlen) < 0 ||
	    check_process(tg, err, errlen) < 0 || check_libc(tg, err, errlen) < 0 ||
	    check_runtime(tg, runtime, err, errlen) < 0 || open_libc(tg, err, errlen) < 0) {
		lp_target_close(tg);
		return -1;
	}
	return 0;
}

void lp_target_close(struct lp_target *tg)
{
	if (tg->mem >= 0)
		close(tg->mem);
	tg->mem = -1;
	lp_elf_close(tg->libc);
	tg->libc = NULL;
	free(tg->safe);
	tg->safe = NULL;
	lp_maps_free(&tg->maps);
}

enum lp_obj_kind lp_target_kind(const struct lp_target *tg, uintptr_t pc)
{
	const struct lp_map *m = lp_maps_find(&tg->maps, pc);

	if (!m || !m->exec)
		return LP_OBJ_NONE;
	if (m->path && strcmp(m->path, tg->libc_path) == 0)
		return LP_OBJ_LIBC;
	if (m->path && strcmp(m->path, tg->ld_path) == 0)
		return LP_OBJ_LOADER;
	return LP_OBJ_OTHER;
}

bool lp_target_libc_func(const struct lp_target *tg, uintptr_t pc, uintptr_t *entry,
			 const char **name)
{
	struct lp_elf_sym sym;

	if (lp_elf_func_at(tg->libc, pc, name, &sym) < 0)
		return false;
	*entry = sym.addr;
	return true;
}

bool lp_target_is_safe(const struct lp_target *tg, uintptr_t entry)
{
	return tg->nsafe && bsearch(&entry, tg->safe, tg->nsafe, sizeof(*tg->safe), cmp_addr);
}
