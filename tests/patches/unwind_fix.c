/* SPDX-License-Identifier: MIT */
/*
 * unwind_fix.c - the unwind target's three functions, each a little
 * different from the original so the test can tell which one ran:
 *   call_cb     returns x * 2 + 2 (originally + 1); exceptions thrown by
 *               the callback unwind through this C function
 *   blocker     reports 'P' on entry (originally 'O') and blocks in read(),
 *               where the thread is cancelled
 *   bt_probe    adds 100 to the original's flags
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

/* Frame 0 is this function, frame 1 must be bt_caller: no extra frames. */
static int new_bt_probe(void)
{
	void *frames[64];
	int n = backtrace(frames, 64), flags = 0;
	char **names = backtrace_symbols(frames, n);

	if (!names)
		return -1;
	for (int i = 0; i < n; i++) {
		fprintf(stderr, "new_bt_probe: frame %d: %s\n", i, names[i]);
		if (i == 1 && strstr(names[i], "(bt_caller+"))
			flags |= 1;
		if (i > 1 && (flags & 1) && strstr(names[i], "(main+"))
			flags |= 2;
	}
	free(names);
	return 100 + flags;
}

static struct lp_func funcs[] = {
	{ .old_name = "call_cb", .new_func = new_call_cb },
	{ .old_name = "blocker", .new_func = new_blocker },
	{ .old_name = "bt_probe", .new_func = new_bt_probe },
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs },
	{ 0 }
};

LP_PATCH(.objs = objs);
