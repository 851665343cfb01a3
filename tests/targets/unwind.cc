// SPDX-License-Identifier: MIT
//
// unwind - unwinding through patched functions (patches/unwind_fix.c).
//
//   call_cb N   call_cb(cb, N): "R" (cb throws for N < 0, see "throw")
//   throw N     call_cb with a callback that throws N through call_cb;
//               "caught N" when main catches it
//   cancel      a thread blocks in read() inside blocker() and is cancelled;
//               "cancelled V unwound U": V is the byte blocker() reported on
//               entry ('O' original, 'P' patched), U = 1 if the cancelling
//               unwind ran the thread's C++ destructors
//   bt          bt_caller() -> bt_probe(): flags 1 = backtrace() frame 1 is
//               bt_caller, 2 = main is further out; +100 when patched
//   quit        "bye", exit 0
//
// Built with -rdynamic (names for backtrace_symbols) and without sibling
// calls, so each caller stays on the stack.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <execinfo.h>
#include <pthread.h>
#include <unistd.h>

#include "common.h"

extern "C" {
int call_cb(void (*cb)(int), int x);
int blocker(int in_fd, int notify_fd);
int bt_probe(void);
int bt_caller(void);
}

// The patched functions.
extern "C" PATCHABLE int call_cb(void (*cb)(int), int x)
{
	cb(x);
	return x * 2 + 1;
}

extern "C" PATCHABLE int blocker(int in_fd, int notify_fd)
{
	char c = 'O';

	if (write(notify_fd, &c, 1) != 1)
		abort();
	return read(in_fd, &c, 1) == 1 ? c : -1; // a cancellation point
}

extern "C" PATCHABLE int bt_probe(void)
{
	void *frames[64];
	int n = backtrace(frames, 64), flags = 0;
	char **names = backtrace_symbols(frames, n);

	if (!names)
		return -1;
	for (int i = 0; i < n; i++) {
		fprintf(stderr, "bt_probe: frame %d: %s\n", i, names[i]);
		if (i == 1 && strstr(names[i], "(bt_caller+"))
			flags |= 1;
		if (i > 1 && (flags & 1) && strstr(names[i], "(main+"))
			flags |= 2;
	}
	free(names);
	return flags;
}

extern "C" PATCHABLE int bt_caller(void)
{
	return bt_probe();
}

// call_cb's callbacks.
static void cb_nothing(int) {}

static void cb_throw(int x)
{
	throw x;
}

// pthread_cancel of a thread blocked inside blocker().
static int cancel_in[2], cancel_notify[2];
static volatile int unwound;

struct unwind_witness {
	~unwind_witness() { unwound = 1; }
};

static void *cancel_thread(void *)
{
	unwind_witness w;

	blocker(cancel_in[0], cancel_notify[1]);
	return nullptr; // not reached: cancelled inside blocker()
}

static void do_cancel()
{
	pthread_t t;
	void *ret;
	char c;

	unwound = 0;
	if (pipe(cancel_in) || pipe(cancel_notify) ||
	    pthread_create(&t, nullptr, cancel_thread, nullptr))
		abort();
	while (read(cancel_notify[0], &c, 1) != 1) // blocker() was entered
		if (errno != EINTR)
			abort();
	pthread_cancel(t);
	pthread_join(t, &ret);
	for (int i = 0; i < 2; i++) {
		close(cancel_in[i]);
		close(cancel_notify[i]);
	}
	if (ret != PTHREAD_CANCELED)
		reply("error thread was not cancelled");
	else
		reply("cancelled %c unwound %d", c, unwound);
}

static void do_throw(int x)
{
	try {
		call_cb(cb_throw, x);
		reply("error nothing thrown");
	} catch (int e) {
		reply("caught %d", e);
	}
}

int main()
{
	char line[256], *arg;

	target_ready();
	while (next_command(line, sizeof(line), &arg)) {
		if (strcmp(line, "call_cb") == 0)
			reply("%d", call_cb(cb_nothing, int_arg(arg)));
		else if (strcmp(line, "throw") == 0)
			do_throw(int_arg(arg));
		else if (strcmp(line, "cancel") == 0)
			do_cancel();
		else if (strcmp(line, "bt") == 0)
			reply("%d", bt_caller());
		else if (strcmp(line, "quit") == 0)
			break;
		else
			reply("error unknown command %s", line);
	}
	reply("bye");
	return 0;
}
