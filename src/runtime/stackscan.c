// SPDX-License-Identifier: MIT
/*
 * Is any thread still running code in [lo, hi)?  Used before a patch's
 * shared object is unloaded: once no thread has its pc or a word of its
 * stack pointing into the patch's code, nothing can return there, because
 * no redirect leads there any more.  The scan is conservative: a stale
 * word that happens to point into the range only delays the unload.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "runtime.h"

#define RED_ZONE    128
#define CHUNK_WORDS 4096

struct mapping {
	uintptr_t lo, hi;
};

struct scan {
	uintptr_t lo, hi;
	struct mapping *maps;
	size_t nmaps;
	pid_t holder;
	uintptr_t words[CHUNK_WORDS];
};

static int read_maps(struct scan *s)
{
	FILE *f = fopen("/proc/thread-self/maps", "re");
	size_t cap = 0;
	unsigned long lo, hi;
	char line[512];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx", &lo, &hi) != 2)
			continue;
		if (s->nmaps == cap) {
			struct mapping *m = reallocarray(s->maps, cap ? cap * 2 : 256, sizeof(*m));

			if (!m) {
				fclose(f);
				return -1;
			}
			s->maps = m;
			cap = cap ? cap * 2 : 256;
		}
		s->maps[s->nmaps++] = (struct mapping){lo, hi};
	}
	fclose(f);
	return 0;
}

static uintptr_t stack_end(const struct scan *s, uintptr_t sp)
{
	for (size_t i = 0; i < s->nmaps; i++)
		if (sp >= s->maps[i].lo && sp < s->maps[i].hi)
			return s->maps[i].hi;
	return 0;
}

/*
 * process_vm_readv rather than plain loads: a thread blocked in the kernel
 * may exit and have its stack unmapped while we read it.
 */
static bool stack_points_into(struct scan *s, uintptr_t from, uintptr_t end)
{
	pid_t pid = lp_self_tid();

	from &= ~(uintptr_t)7;
	while (from < end) {
		size_t want = end - from < sizeof(s->words) ? end - from : sizeof(s->words);
		struct iovec local = {s->words, want}, remote = {(void *)from, want};
		ssize_t got = process_vm_readv(pid, &local, 1, &remote, 1, 0);

		if (got <= 0)
			return false;
		for (size_t i = 0; i < (size_t)got / sizeof(uintptr_t); i++)
			if (s->words[i] >= s->lo && s->words[i] < s->hi)
				return true;
		from += (size_t)got;
	}
	return false;
}

static int scan_thread(struct lp_thread_ctx *ctx, void *arg)
{
	struct scan *s = arg;
	uintptr_t end, from;

	if (s->holder)
		return 0;
	if (ctx->pc >= s->lo && ctx->pc < s->hi) {
		s->holder = ctx->tid;
		return 0;
	}
	end = stack_end(s, ctx->sp);
	from = ctx->sp > RED_ZONE ? ctx->sp - RED_ZONE : 0;
	if (end && stack_points_into(s, from, end))
		s->holder = ctx->tid;
	/* A blocked thread's stack only held still if it stayed blocked. */
	if (!ctx->ucontext && !lp_thread_still_blocked(ctx)) {
		s->holder = 0;
		return 1;
	}
	return 0;
}

int lp_threads_scan_stacks(uintptr_t lo, uintptr_t hi, pid_t *holder, char *err, size_t errlen)
{
	struct scan *s = calloc(1, sizeof(*s));
	struct lp_stopper *stopped = NULL;
	int ret;

	if (!s || read_maps(s) < 0) {
		snprintf(err, errlen, "cannot read the memory map: %s", strerror(errno));
		if (s)
			free(s->maps);
		free(s);
		return -1;
	}
	s->lo = lo;
	s->hi = hi;
	/* Threads that would not answer the visit are stopped and read from /proc. */
	if (lp_stop_trap_blockers(NULL, &stopped, err, errlen) < 0)
		ret = -1;
	else
		ret = lp_threads_visit(scan_thread, lo, hi, s, true, err, errlen);
	lp_stopper_release(stopped);
	*holder = s->holder;
	free(s->maps);
	free(s);
	return ret;
}
