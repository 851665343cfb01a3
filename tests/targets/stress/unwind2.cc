// SPDX-License-Identifier: MIT
//
// unwind2 - pthread_cancel, C++ exceptions and backtrace() while a
// transition is in progress (tests/e2e/76-unwind-transition.sh, patch
// stress/unwind2_fix).  A "holder" thread can stay inside the patched
// hold() and run the same checks from there: it cannot switch while
// hold() is on its stack, so during a transition it runs the other
// implementations than a thread that switched.
//
//   call_cb N    call_cb(cb, N): "R" (2N + 1, patched 2N + 2)
//   throw N      a callback throws N through call_cb: "caught N"
//   cancel       a new thread blocks in read() inside blocker() and is
//                cancelled: "cancelled V unwound U", V the byte blocker()
//                reported ('O' original, 'P' patched), U = 1 when the
//                cancellation ran the thread's C++ destructors
//   bt           bt_caller() -> bt_probe(): flags 1 = backtrace() frame 1
//                is bt_caller, 2 = the thread's outer function (main, or
//                holder_thread) is further out; +100 when patched
//   hold         start "holder", which enters hold() and serves checks from
//                inside it: "held O" or "held P" (the implementation)
//   h CHECK      run CHECK (one of the four above) in the holder
//   release      the holder returns from hold(): "released R", R = 11 from
//                the original, 21 from the patch
//   quit         "bye", exit 0
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
int bt_probe(const char *outer);
int bt_caller(const char *outer);
int hold(int (*serve)(int who));
void *holder_thread(void *);
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

extern "C" PATCHABLE int bt_probe(const char *outer)
{
	void *frames[64];
	int n = backtrace(frames, 64), flags = 0;
	char **names = backtrace_symbols(frames, n);
	char want[64];

	if (!names)
		return -1;
	snprintf(want, sizeof(want), "(%s+", outer);
	for (int i = 0; i < n; i++) {
		fprintf(stderr, "bt_probe: frame %d: %s\n", i, names[i]);
		if (i == 1 && strstr(names[i], "(bt_caller+"))
			flags |= 1;
		if (i > 1 && (flags & 1) && strstr(names[i], want))
			flags |= 2;
	}
	free(names);
	return flags;
}

extern "C" PATCHABLE int hold(int (*serve)(int who))
{
	return serve('O') + 10;
}

// Never patched: the caller whose frame backtrace() must show right above
// bt_probe's (noipa keeps it a frame of its own).
extern "C" PATCHABLE int bt_caller(const char *outer)
{
	return bt_probe(outer);
}

static void cb_nothing(int) {}

static void cb_throw(int x)
{
	throw x;
}

// pthread_cancel of a thread blocked inside blocker().
struct cancel_ctx {
	int in[2], notify[2];
	volatile int unwound;
};

struct unwind_witness {
	volatile int *flag;
	~unwind_witness() { *flag = 1; }
};

static void *cancel_thread(void *p)
{
	cancel_ctx *ctx = static_cast<cancel_ctx *>(p);
	unwind_witness w{ &ctx->unwound };

	blocker(ctx->in[0], ctx->notify[1]);
	return nullptr; // not reached: cancelled inside blocker()
}

static void check_cancel(char *out, size_t len)
{
	cancel_ctx ctx = {};
	pthread_t t;
	void *ret;
	char c = '?';

	if (pipe(ctx.in) || pipe(ctx.notify) ||
	    pthread_create(&t, nullptr, cancel_thread, &ctx))
		abort();
	while (read(ctx.notify[0], &c, 1) != 1) // blocker() was entered
		if (errno != EINTR)
			abort();
	pthread_cancel(t);
	pthread_join(t, &ret);
	for (int i = 0; i < 2; i++) {
		close(ctx.in[i]);
		close(ctx.notify[i]);
	}
	if (ret != PTHREAD_CANCELED)
		snprintf(out, len, "error thread was not cancelled");
	else
		snprintf(out, len, "cancelled %c unwound %d", c, ctx.unwound);
}

static void check_throw(int x, char *out, size_t len)
{
	try {
		call_cb(cb_throw, x);
		snprintf(out, len, "error nothing thrown");
	} catch (int e) {
		snprintf(out, len, "caught %d", e);
	}
}

// One check; @outer is the calling thread's outermost function of ours.
static void run_check(char *line, const char *outer, char *out, size_t len)
{
	char *arg = strchr(line, ' ');

	if (arg)
		*arg++ = '\0';
	else
		arg = line + strlen(line);
	if (strcmp(line, "call_cb") == 0)
		snprintf(out, len, "%d", call_cb(cb_nothing, int_arg(arg)));
	else if (strcmp(line, "throw") == 0)
		check_throw(int_arg(arg), out, len);
	else if (strcmp(line, "cancel") == 0)
		check_cancel(out, len);
	else if (strcmp(line, "bt") == 0)
		snprintf(out, len, "%d", bt_caller(outer));
	else
		snprintf(out, len, "error unknown check %s", line);
}

// The holder: main -> holder over hold_cmd, answers over hold_reply, one
// line each way.
static int hold_cmd[2], hold_reply[2];
static pthread_t holder;
static bool holding;
static int hold_result;

static int read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;

	while (n + 1 < size) {
		ssize_t r = read(fd, buf + n, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return 0;
}

static void write_line(int fd, const char *s)
{
	size_t len = strlen(s);

	if (write(fd, s, len) != (ssize_t)len || write(fd, "\n", 1) != 1)
		abort();
}

// Called by either hold(): serves checks with hold() on the stack.
static int serve(int who)
{
	char line[256], out[256], held[8];

	snprintf(held, sizeof(held), "held %c", who);
	write_line(hold_reply[1], held);
	while (read_line(hold_cmd[0], line, sizeof(line)) == 0 &&
	       strcmp(line, "release") != 0) {
		run_check(line, "holder_thread", out, sizeof(out));
		write_line(hold_reply[1], out);
	}
	return 1;
}

extern "C" void *holder_thread(void *)
{
	pthread_setname_np(pthread_self(), "holder");
	hold_result = hold(serve);
	return nullptr;
}

static void do_hold()
{
	char line[64];

	if (holding) {
		reply("error already holding");
		return;
	}
	if (pthread_create(&holder, nullptr, holder_thread, nullptr))
		abort();
	holding = true;
	if (read_line(hold_reply[0], line, sizeof(line)))
		abort();
	reply("%s", line);
}

static void do_holder_check(const char *check)
{
	char line[256];

	if (!holding) {
		reply("error not holding");
		return;
	}
	write_line(hold_cmd[1], check);
	if (read_line(hold_reply[0], line, sizeof(line)))
		abort();
	reply("%s", line);
}

static void release_holder()
{
	write_line(hold_cmd[1], "release");
	pthread_join(holder, nullptr);
	holding = false;
}

static void do_release()
{
	if (!holding) {
		reply("error not holding");
		return;
	}
	release_holder();
	reply("released %d", hold_result);
}

int main()
{
	char line[256], *arg, out[256];

	if (pipe(hold_cmd) || pipe(hold_reply)) {
		perror("unwind2: pipe");
		return 1;
	}
	target_ready();
	while (next_command(line, sizeof(line), &arg)) {
		if (strcmp(line, "hold") == 0) {
			do_hold();
		} else if (strcmp(line, "h") == 0) {
			do_holder_check(arg);
		} else if (strcmp(line, "release") == 0) {
			do_release();
		} else if (strcmp(line, "quit") == 0) {
			break;
		} else {
			// next_command() split the line: join it again.
			if (*arg)
				arg[-1] = ' ';
			run_check(line, "main", out, sizeof(out));
			reply("%s", out);
		}
	}
	if (holding)
		release_holder();
	reply("bye");
	return 0;
}
