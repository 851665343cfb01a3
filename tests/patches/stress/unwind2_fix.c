/* SPDX-License-Identifier: MIT */
/*
 * unwind2_fix.c - stress/unwind2's four functions, each telling which one
 * ran:
 *   call_cb     returns 2x + 2 (originally 2x + 1); exceptions thrown by the
 *               callback unwind through this C function
 *   blocker     reports 'P' on entry (originally 'O') and blocks in read(),
 *               where the thread is cancelled
 *   bt_probe    adds 100 to the original's flags
 *   hold        serves with 'P' (originally 'O') and returns 20 more than
 *               the server (originally 10)
 */
#include <execinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lpatch.h>

static int new_call_cb(void (*cb)(int), int x)
{
	cb(x);
	return x * 2 + 2;
}

static int new_blocker(int in_fd, int notify_fd)
{
	char c = 'P';

	if (write(notify_fd, &c, 1) != 1)
		abort();
	return read(in_fd, &c, 1) == 1 ? c : -1; /* a cancellation point */
}

/* Frame 0 is this function, frame 1 must be bt_caller: no stub frames. */
static int new_bt_probe(const char *outer)
{
	void *frames[64];
	int n = backtrace(frames, 64), flags = 0;
	char **names = backtrace_symbols(frames, n);
	char want[64];

	if (!names)
		return -1;
	snprintf(want, sizeof(want), "(%s+", outer);
	for (int i = 0; i < n; i++) {
		fprintf(stderr, "new_bt_probe: frame %d: %s\n", i, names[i]);
		if (i == 1 && strstr(names[i], "(bt_caller+"))
			flags |= 1;
		if (i > 1 && (flags & 1) && strstr(names[i], want))
			flags |= 2;
	}
	free(names);
	return 100 + flags;
}

static int new_hold(int (*serve)(int who))
{
	return serve('P') + 20;
}

static struct lp_func funcs[] = {
	{ .old_name = "call_cb", .new_func = new_call_cb },
	{ .old_name = "blocker", .new_func = new_blocker },
	{ .old_name = "bt_probe", .new_func = new_bt_probe },
	{ .old_name = "hold", .new_func = new_hold },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs },
	{ 0 }
};

LP_PATCH(.objs = objs);
