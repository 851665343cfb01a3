/* SPDX-License-Identifier: MIT */
/*
 * The small per-thread files of /proc that the injector reads of another
 * process and the runtime of its own.
 */
#ifndef LP_COMMON_PROCFS_H
#define LP_COMMON_PROCFS_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>
#include <unistd.h>

/*
 * Read /proc/@pid/task/@tid/@file (@pid 0: this process) into @buf,
 * NUL-terminated; false when it cannot (the thread may be gone).
 */
static inline bool lp_read_task_file(pid_t pid, pid_t tid, const char *file, char *buf, size_t size)
{
	char path[96];
	ssize_t len;
	int fd;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/%s", (int)pid, (int)tid, file);
	else
		snprintf(path, sizeof(path), "/proc/self/task/%d/%s", (int)tid, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	len = read(fd, buf, size - 1);
	close(fd);
	if (len <= 0)
		return false;
	buf[len] = '\0';
	return true;
}

#endif
