// SPDX-License-Identifier: MIT
/*
 * `apply --all`: every process that maps one of the objects a patch names.
 *
 *   - a library matches a mapped file whose name or soname is the
 *     object's name ("libz.so.1" is mapped as .../libz.so.1.2.13);
 *   - the main program matches by the build-id the object pins or, when it
 *     pins none, when the program defines every function the object
 *     replaces (so that a patch of parse() is not tried on every program);
 *   - a pinned build-id must be the file's.
 *
 * The same judgement tells, before the runtime is injected for a patch,
 * whether the patch can fit the process at all (lp_patch_fits()): a patch
 * for another program is refused without touching the process.
 *
 * Files are recognised by device and inode, and read once each however
 * many processes map them.  Processes this one may not inspect, kernel
 * threads and this process itself are left out.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cli.h"
#include "elf/lp_elf.h"

#define MAX_OBJECTS 64

/* What is known of one file, found by device and inode. */
struct file {
	dev_t dev;
	ino_t ino;
	bool read;
	char build_id[129]; /* "" when it has none */
	char soname[128];
	uint64_t checked, defines; /* main program: per object, whether it defines its functions */
};

struct files {
	struct file *v;
	size_t n;
};

static struct file *file_of(struct files *fs, dev_t dev, ino_t ino)
{
	struct file *v;

	for (size_t i = 0; i < fs->n; i++)
		if (fs->v[i].dev == dev && fs->v[i].ino == ino)
			return &fs->v[i];
	v = reallocarray(fs->v, fs->n + 1, sizeof(*v));
	if (!v)
		return NULL;
	fs->v = v;
	fs->v[fs->n] = (struct file){.dev = dev, .ino = ino};
	return &fs->v[fs->n++];
}

static void note_build_id(Elf *elf, struct file *f)
{
	Elf_Scn *scn = NULL;

	while (!f->build_id[0] && (scn = elf_nextscn(elf, scn))) {
		Elf_Data *data = elf_getdata(scn, NULL);
		size_t off = 0, name_off, desc_off;
		GElf_Shdr sh;
		GElf_Nhdr nh;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE || !data)
			continue;
		while ((off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
			const unsigned char *desc = (const unsigned char *)data->d_buf + desc_off;

			if (nh.n_type != NT_GNU_BUILD_ID || nh.n_namesz != 4 ||
			    memcmp((const char *)data->d_buf + name_off, "GNU", 4) != 0 ||
			    2 * nh.n_descsz >= sizeof(f->build_id))
				continue;
			for (size_t i = 0; i < nh.n_descsz; i++)
				snprintf(f->build_id + 2 * i, 3, "%02x", desc[i]);
			break;
		}
	}
}

static void note_soname(Elf *elf, struct file *f)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn))) {
		Elf_Data *data = elf_getdata(scn, NULL);
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNAMIC || !data || !sh.sh_entsize)
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Dyn dyn;
			const char *name;

			if (gelf_getdyn(data, (int)i, &dyn) && dyn.d_tag == DT_SONAME &&
			    (name = elf_strptr(elf, sh.sh_link, dyn.d_un.d_val)))
				snprintf(f->soname, sizeof(f->soname), "%s", name);
		}
	}
}

/* Build-id and soname of the file at @path, once. */
static void read_file(struct file *f, const char *path)
{
	int fd;
	Elf *elf;

	if (f->read)
		return;
	f->read = true;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (elf && elf_kind(elf) == ELF_K_ELF) {
		note_build_id(elf, f);
		note_soname(elf, f);
	}
	if (elf)
		elf_end(elf);
	close(fd);
}

static bool build_id_ok(const struct lp_patch_object *obj, const struct file *f)
{
	return !obj->build_id || strcasecmp(obj->build_id, f->build_id) == 0;
}

/*
 * Does the file at @path define every function and symbol of object @i?
 * When it does not, @why (if not NULL) says which one it lacks.
 */
static bool defines_funcs(struct file *f, size_t i, const struct lp_patch_object *obj,
			  const char *path, const char *shown, char *why, size_t len)
{
	struct lp_elf *elf;
	bool all = true;

	if (i >= MAX_OBJECTS)
		return false;
	if (!why && (f->checked & (1ull << i)))
		return f->defines & (1ull << i);
	f->checked |= 1ull << i;
	elf = lp_elf_open(path, 0, NULL, why, len);
	for (size_t k = 0; elf && all && k < obj->funcs.n; k++) {
		struct lp_elf_sym sym;

		all = lp_elf_find(elf, obj->funcs.names[k], obj->funcs.sympos[k], &sym, NULL, 0) ==
			  0 &&
		      sym.is_func;
		if (!all && why)
			lp_set_err(why, len, "function '%s' not found in %s", obj->funcs.names[k],
				   shown);
	}
	for (size_t k = 0; elf && all && k < obj->syms.n; k++) {
		struct lp_elf_sym sym;

		all = lp_elf_find(elf, obj->syms.names[k], obj->syms.sympos[k], &sym, NULL, 0) == 0;
		if (!all && why)
			lp_set_err(why, len, "symbol '%s' not found in %s", obj->syms.names[k],
				   shown);
	}
	if (elf && all)
		f->defines |= 1ull << i;
	lp_elf_close(elf);
	return f->defines & (1ull << i);
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* A file the process maps and @obj names: 1 as the patch wants it, 0 not it, -1 not as wanted. */
static int maps_library(struct files *fs, pid_t pid, const char *line, size_t i,
			const struct lp_patch_object *obj, char *why, size_t len)
{
	unsigned int major, minor;
	unsigned long inode;
	char path[PATH_MAX + 32];
	struct file *f;
	int at = 0;
	const char *file, *base;

	if (sscanf(line, "%*s %*s %*s %x:%x %lu %n", &major, &minor, &inode, &at) < 3 || !at ||
	    line[at] != '/')
		return 0;
	file = line + at;
	base = base_name(file);
	/* The soname is a prefix of the file's name: read only those files. */
	if (strncmp(base, obj->name, strlen(obj->name)) != 0)
		return 0;
	f = file_of(fs, makedev(major, minor), inode);
	if (!f)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/root%s", (int)pid, file);
	read_file(f, path);
	if (strcmp(base, obj->name) != 0 && strcmp(f->soname, obj->name) != 0)
		return 0;
	if (!build_id_ok(obj, f)) {
		if (why)
			lp_set_err(why, len, "%s is build %s, not the patch's %s", file,
				   f->build_id[0] ? f->build_id : "(none)", obj->build_id);
		return -1;
	}
	return defines_funcs(f, i, obj, path, file, why, len) ? 1 : -1;
}

/* The main program: 1 as the patch wants it, -1 not. */
static int maps_main(struct files *fs, pid_t pid, size_t i, const struct lp_patch_object *obj,
		     char *why, size_t len)
{
	char exe[64], shown[PATH_MAX];
	struct stat st;
	struct file *f;
	ssize_t n;

	snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)pid);
	if (stat(exe, &st) < 0 || !(f = file_of(fs, st.st_dev, st.st_ino)))
		return -1;
	n = readlink(exe, shown, sizeof(shown) - 1);
	shown[n > 0 ? n : 0] = '\0';
	read_file(f, exe);
	if (!build_id_ok(obj, f)) {
		if (why)
			lp_set_err(why, len, "the program %s is build %s, not the patch's %s",
				   shown, f->build_id[0] ? f->build_id : "(none)", obj->build_id);
		return -1;
	}
	return defines_funcs(f, i, obj, exe, shown, why, len) ? 1 : -1;
}

/*
 * How process @pid has the objects of @pi: 1 when one of them is there as
 * the patch wants it; -1 when one is there but not as wanted (@why, when
 * not NULL, says why; every object is then looked at); 0 otherwise.
 */
static int judge_process(struct files *fs, pid_t pid, const struct lp_patch_info *pi, char *why,
			 size_t len)
{
	char path[64], *line = NULL, last[64] = "";
	bool ok = false, bad = false;
	size_t size = 0;
	FILE *maps;

	/* Its /proc entries, through a live thread once the main one exited. */
	pid = lp_proc_live_thread(pid);
	for (size_t i = 0; i < pi->nobjs && (why || !ok); i++) {
		int r = pi->objs[i].name ? 0 : maps_main(fs, pid, i, &pi->objs[i], why, len);

		ok |= r > 0;
		bad |= r < 0;
	}
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	maps = fopen(path, "re");
	while (maps && (why || !ok) && getline(&line, &size, maps) > 0) {
		char id[64] = "";

		line[strcspn(line, "\n")] = '\0';
		/* A file's mappings follow each other: look at it once. */
		if (sscanf(line, "%*s %*s %*s %*s %63s", id) == 1 && strcmp(id, "0") != 0 &&
		    strcmp(id, last) == 0)
			continue;
		snprintf(last, sizeof(last), "%s", id);
		for (size_t i = 0; i < pi->nobjs; i++) {
			int r = pi->objs[i].name
				    ? maps_library(fs, pid, line, i, &pi->objs[i], why, len)
				    : 0;

			ok |= r > 0;
			bad |= r < 0;
		}
	}
	free(line);
	if (maps)
		fclose(maps);
	return bad && (why || !ok) ? -1 : ok;
}

int lp_patch_fits(const struct lp_patch_info *pi, pid_t pid, char *why, size_t len)
{
	struct files fs = {0};
	int ret;

	elf_version(EV_CURRENT);
	why[0] = '\0';
	ret = judge_process(&fs, pid, pi, why, len);
	free(fs.v);
	return ret < 0 ? -1 : 0;
}

int lp_select_processes(const struct lp_patch_info *pi, pid_t **pids, size_t *n, char *err,
			size_t errlen)
{
	struct files fs = {0};
	DIR *dir = opendir("/proc");
	struct dirent *de;
	size_t cap = 0;
	int ret = 0;

	*pids = NULL;
	*n = 0;
	if (!dir) {
		lp_set_err(err, errlen, "cannot read /proc: %s", strerror(errno));
		return -1;
	}
	elf_version(EV_CURRENT);
	while ((de = readdir(dir))) {
		pid_t pid;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid = (pid_t)atoi(de->d_name);
		if (pid == getpid() || judge_process(&fs, pid, pi, NULL, 0) <= 0)
			continue;
		if (*n == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			pid_t *v = reallocarray(*pids, ncap, sizeof(*v));

			if (!v) {
				lp_set_err(err, errlen, "out of memory");
				ret = -1;
				break;
			}
			*pids = v;
			cap = ncap;
		}
		(*pids)[(*n)++] = pid;
	}
	closedir(dir);
	free(fs.v);
	if (ret == 0)
		lp_sort_pids(*pids, *n);
	return ret;
}
