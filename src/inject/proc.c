// SPDX-License-Identifier: MIT
/*
 * What /proc tells about a process and its threads without disturbing
 * them: mappings, thread IDs, the system call a thread is blocked in, its
 * state and signal masks.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/procfs.h"
#include "inject/internal.h"

void lp_maps_free(struct lp_maps *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].path);
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

static int add_map(struct lp_maps *m, size_t *cap, const struct lp_map *map)
{
	if (m->n == *cap) {
		size_t ncap = *cap ? 2 * *cap : 64;
		struct lp_map *v = reallocarray(m->v, ncap, sizeof(*v));

		if (!v)
			return -1;
		m->v = v;
		*cap = ncap;
	}
	m->v[m->n++] = *map;
	return 0;
}

/*
 * A thread of @pid that has not exited: once the main thread has (with
 * pthread_exit()), /proc/PID/maps reads empty and /proc/PID/mem and exe
 * fail, while /proc/TID/... of a live thread show the same process.
 */
pid_t lp_proc_live_thread(pid_t pid)
{
	pid_t *tids, live = pid;
	size_t n;

	if (lp_proc_state(pid, pid) != 'Z' || lp_proc_tasks(pid, &tids, &n) < 0)
		return pid;
	for (size_t i = 0; i < n && live == pid; i++) {
		char state = lp_proc_state(pid, tids[i]);

		if (state && state != 'Z' && state != 'X')
			live = tids[i];
	}
	free(tids);
	return live;
}

/* "lo-hi perms offset dev inode   path" */
int lp_maps_read(pid_t pid, struct lp_maps *m, char *err, size_t errlen)
{
	char path[64], *line = NULL;
	size_t size = 0, cap = 0;
	FILE *f;
	int ret = 0;

	m->v = NULL;
	m->n = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f) {
		lp_set_err(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	while (getline(&line, &size, f) > 0) {
		struct lp_map map = {0};
		char perms[8];
		int name = 0;

		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %n", &map.lo, &map.hi, perms, &map.offset,
			   &name) < 4)
			continue;
		map.exec = perms[2] == 'x';
		if (name && line[name] == '/' && !(map.path = strdup(line + name))) {
			ret = -1;
			break;
		}
		if (add_map(m, &cap, &map) < 0) {
			free(map.path);
			ret = -1;
			break;
		}
	}
	free(line);
	fclose(f);
	if (ret < 0) {
		lp_set_err(err, errlen, "out of memory");
		lp_maps_free(m);
	}
	return ret;
}

const struct lp_map *lp_maps_find(const struct lp_maps *m, uintptr_t addr)
{
	for (size_t i = 0; i < m->n; i++)
		if (addr >= m->v[i].lo && addr < m->v[i].hi)
			return &m->v[i];
	return NULL;
}

static int cmp_tid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

/* The threads of @pid, sorted. */
int lp_proc_tasks(pid_t pid, pid_t **tids, size_t *n)
{
	size_t cap = 0;
	struct dirent *de;
	char path[64];
	DIR *dir;

	*tids = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((de = readdir(dir))) {
		pid_t tid = (pid_t)atoi(de->d_name);

		if (tid <= 0)
			continue;
		if (*n == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			pid_t *v = reallocarray(*tids, ncap, sizeof(*v));

			if (!v) {
				closedir(dir);
				free(*tids);
				*tids = NULL;
				errno = ENOMEM;
				return -1;
			}
			*tids = v;
			cap = ncap;
		}
		(*tids)[(*n)++] = tid;
	}
	closedir(dir);
	if (*n)
		qsort(*tids, *n, sizeof(**tids), cmp_tid);
	return 0;
}

bool lp_tid_in(pid_t tid, const pid_t *sorted, size_t n)
{
	return n && bsearch(&tid, sorted, n, sizeof(*sorted), cmp_tid) != NULL;
}

/* "running", "-1 sp pc" (blocked outside a system call) or "nr a1..a6 sp pc". */
bool lp_proc_syscall(pid_t pid, pid_t tid, struct lp_proc_sys *s)
{
	char buf[256], *tok, *save = NULL, *fields[9];
	int n = 0;

	*s = (struct lp_proc_sys){.nr = -1};
	if (!lp_read_task_file(pid, tid, "syscall", buf, sizeof(buf)))
		return false;
	for (tok = strtok_r(buf, " \n", &save); tok && n < 9; tok = strtok_r(NULL, " \n", &save))
		fields[n++] = tok;
	if (n >= 1 && strcmp(fields[0], "running") == 0) {
		s->running = true;
		return true;
	}
	if (n != 3 && n != 9)
		return false;
	s->nr = strtol(fields[0], NULL, 10);
	for (int i = 1; i < n - 2; i++)
		s->args[i - 1] = strtoull(fields[i], NULL, 16);
	s->sp = strtoull(fields[n - 2], NULL, 16);
	s->pc = strtoull(fields[n - 1], NULL, 16);
	return true;
}

/* The state letter of /proc/PID/task/TID/stat ('R', 'S', 'D', 'T', 'Z', ...), 0 when gone. */
char lp_proc_state(pid_t pid, pid_t tid)
{
	char buf[512], *end;

	if (!lp_read_task_file(pid, tid, "stat", buf, sizeof(buf)))
		return 0;
	end = strrchr(buf, ')');
	return end && end[1] == ' ' ? end[2] : 0;
}

/* The value of "@key:" in /proc/PID/task/TID/status, without leading blanks. */
bool lp_proc_status(pid_t pid, pid_t tid, const char *key, char *val, size_t len)
{
	char buf[4096], want[32];
	const char *at;
	size_t n;

	snprintf(want, sizeof(want), "\n%s:", key);
	if (!lp_read_task_file(pid, tid, "status", buf, sizeof(buf)) || !(at = strstr(buf, want)))
		return false;
	at += strlen(want);
	at += strspn(at, " \t");
	n = strcspn(at, "\n");
	snprintf(val, len, "%.*s", (int)n, at);
	return true;
}

/* Several signal sets of the thread ("SigBlk", "SigPnd", "ShdPnd"...), from one read. */
bool lp_proc_sigsets(pid_t pid, pid_t tid, const char *const *keys, size_t n, uint64_t *sets)
{
	char buf[4096], want[32];

	if (!lp_read_task_file(pid, tid, "status", buf, sizeof(buf)))
		return false;
	for (size_t i = 0; i < n; i++) {
		const char *at;

		snprintf(want, sizeof(want), "\n%s:", keys[i]);
		at = strstr(buf, want);
		if (!at)
			return false;
		sets[i] = strtoull(at + strlen(want), NULL, 16);
	}
	return true;
}

/* One signal set of the thread; 0 when unknown. */
uint64_t lp_proc_sigset(pid_t pid, pid_t tid, const char *key)
{
	uint64_t set;

	return lp_proc_sigsets(pid, tid, &key, 1, &set) ? set : 0;
}
