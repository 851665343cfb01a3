/* SPDX-License-Identifier: MIT */
/*
 * churn - threads that spend their time inside malloc, the dynamic loader,
 * stdio and thread start-up while transitions run, and threads that block
 * every signal (tests/e2e/72-parked.sh, patch stress/churn_fix).
 *
 *   churn [LIBDEMO]   the program; LIBDEMO is the path of libdemo.so, which
 *                     the "dlopen" thread loads and unloads
 *
 *   start        start the churn threads: "malloc" (malloc, calloc, realloc
 *                and free of sizes up to 1 MiB), "dlopen" (dlopen, dlsym
 *                and dlclose of libdemo.so, calling demo_lib_value(), and
 *                of libz.so.1), "stdio0" and "stdio1" (fprintf to one FILE
 *                on /dev/null), "spawn" (pthread_create and pthread_join
 *                of threads that call churnval() once) and "caller"
 *                (churnval() in a loop).  "started"
 *   expect WHAT  from now on, results must be WHAT: "new" (the patch's),
 *                "old" (the originals') or "any" (either: a transition may
 *                run).  "expect WHAT"
 *   progress     wait until every running churn thread has finished two
 *                more rounds (so at least one under the current "expect"):
 *                "progress", or "stuck NAME..." after PROGRESS_TIMEOUT_S
 *   lib HOW      "lib HOW": whether the patch under test replaces
 *                demo_lib_value() too ("patched": its results follow
 *                "expect") or not ("unpatched", the default: they must
 *                always be the original's)
 *   stats        "malloc N dlopen N stdio N spawn N call N nosig N bad B"
 *   call N       "R" = churnval(N)
 *   nosig        start "nosig": every signal blocked, churnval() in a loop.
 *                "nosig started"
 *   spin         "spinner" (every signal blocked, started on first use)
 *                spins in user code without calling a patched function:
 *                "spinning" once it does
 *   unspin       it stops, calls churnval(5) once, and blocks in read():
 *                "unspun R"
 *   quit         stop and join every thread, "bye", exit 0
 *
 * churnval(x) is 3x + 1, and stress/churn_fix makes it 3x + 2;
 * demo_lib_value(x) is 11x + 3, and stress/churn_lib_fix also makes it
 * x + 5000.  A result that is neither, or not the one "expect" asks for,
 * counts as bad and is described on stderr.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define PROGRESS_TIMEOUT_S 15

int churnval(int x);

static volatile int churn_bias = 1;

PATCHABLE int churnval(int x)
{
	return x * 3 + churn_bias;
}

enum expect { EXPECT_ANY, EXPECT_OLD, EXPECT_NEW };

/*
 * What main expects, and a generation that moves with every change.  A
 * thread samples both before a call and the generation again after it: a
 * result is only held against an expectation that did not change while the
 * call ran.  Main changes it before the test starts a transition and after
 * one is complete, so a checked call ran entirely in a stable state.
 */
static _Atomic int expect;
static atomic_ulong expect_gen;

struct sample {
	unsigned long gen;
	int expect;
};

static atomic_bool lib_patched;

static struct sample sample_begin(void)
{
	struct sample s;

	s.gen = atomic_load(&expect_gen);
	s.expect = atomic_load(&expect);
	return s;
}

static atomic_ulong bad;

/* Count a bad result; describe the first few on stderr (not millions). */
static void note_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note_bad(const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_add(&bad, 1) >= 20)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

/* Check result @r of a call made since @s: old is @old_r, new is @new_r. */
static void check(struct sample s, const char *what, int x, int r, int old_r, int new_r)
{
	const char *why = NULL;

	if (r != old_r && r != new_r)
		why = "neither the old nor the new result";
	else if (atomic_load(&expect_gen) != s.gen)
		return;
	else if (s.expect == EXPECT_NEW && r != new_r)
		why = "the old result after the patch was applied";
	else if (s.expect == EXPECT_OLD && r != old_r)
		why = "the new result after the patch was reverted";
	if (why)
		note_bad("churn: %s(%d) = %d: %s\n", what, x, r, why);
}

static void call_checked(int x)
{
	struct sample s = sample_begin();

	check(s, "churnval", x, churnval(x), 3 * x + 1, 3 * x + 2);
}

enum worker_kind { W_MALLOC, W_DLOPEN, W_STDIO, W_SPAWN, W_CALL, W_NOSIG, W_KINDS };

static const char *const kind_names[W_KINDS] = { "malloc", "dlopen", "stdio",
						 "spawn",  "call",   "nosig" };

struct worker {
	const char *name;
	enum worker_kind kind;
	pthread_t thread;
	bool running;
	atomic_ulong rounds;
};

static struct worker workers[] = {
	{ .name = "malloc", .kind = W_MALLOC }, { .name = "dlopen", .kind = W_DLOPEN },
	{ .name = "stdio0", .kind = W_STDIO },	{ .name = "stdio1", .kind = W_STDIO },
	{ .name = "spawn", .kind = W_SPAWN },	{ .name = "caller", .kind = W_CALL },
	{ .name = "nosig", .kind = W_NOSIG },
};
#define NWORKERS (sizeof(workers) / sizeof(workers[0]))

static atomic_bool stopping;
static const char *libdemo_path;
static FILE *devnull;

static void block_all_signals(void)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
}

/* Sizes from 1 byte to 1 MiB: small bins, large bins and mmap()ed chunks. */
static void malloc_round(unsigned int *seed, void **slots, unsigned long round)
{
	size_t i = round % 64, size = ((size_t)1 << (rand_r(seed) % 21)) + rand_r(seed) % 100;

	free(slots[i]);
	switch (round % 3) {
	case 0:
		slots[i] = malloc(size);
		break;
	case 1:
		slots[i] = calloc(1, size);
		break;
	default:
		slots[i] = realloc(malloc(size / 2 + 1), size);
		break;
	}
	if (!slots[i]) {
		note_bad("churn: allocation of %zu bytes failed\n", size);
		return;
	}
	memset(slots[i], (int)round, size < 256 ? size : 256);
}

/*
 * libdemo.so is mapped and unmapped each time, so the runtime's hooks for
 * libraries coming and going run while transitions do; libz.so.1 is
 * mapped for good (the runtime itself uses it), so its dlopen only takes
 * the loader's locks.
 */
static void dlopen_round(unsigned long round)
{
	bool demo = round % 2 == 0 && libdemo_path;
	struct sample s = sample_begin();
	void *h = dlopen(demo ? libdemo_path : "libz.so.1", RTLD_NOW | RTLD_LOCAL);
	int x = (int)(round % 1000);

	if (!h) {
		note_bad("churn: dlopen: %s\n", dlerror());
		return;
	}
	if (demo) {
		int (*fn)(int) = (int (*)(int))dlsym(h, "demo_lib_value");
		/* Not in the patch: the original's is the only right result. */
		int new_r = atomic_load(&lib_patched) ? x + 5000 : 11 * x + 3;

		if (fn)
			check(s, "demo_lib_value", x, fn(x), 11 * x + 3, new_r);
		else
			note_bad("churn: no demo_lib_value in %s\n", libdemo_path);
	} else if (!dlsym(h, "zlibVersion")) {
		note_bad("churn: no zlibVersion in libz.so.1\n");
	}
	if (dlclose(h))
		note_bad("churn: dlclose: %s\n", dlerror());
}

static void stdio_round(unsigned long round)
{
	char buf[128];

	/* Formatting and the FILE's lock, shared by both stdio threads. */
	snprintf(buf, sizeof(buf), "%lu %g %s", round, (double)round / 7, "churn");
	fprintf(devnull, "%s %*d %.3f\n", buf, 12, (int)round, (double)round * 1.5);
	if (round % 64 == 0)
		fflush(devnull);
}

static void *spawned_main(void *arg)
{
	call_checked((int)(long)arg);
	return NULL;
}

static void spawn_round(unsigned long round)
{
	pthread_t t;
	int err = pthread_create(&t, NULL, spawned_main, (void *)(long)(round % 1000));

	if (err) {
		note_bad("churn: pthread_create: %s\n", strerror(err));
		return;
	}
	pthread_join(t, NULL);
}

static void *worker_main(void *p)
{
	struct worker *w = p;
	void *slots[64] = { 0 };
	unsigned int seed = 1;

	pthread_setname_np(pthread_self(), w->name);
	if (w->kind == W_NOSIG)
		block_all_signals();
	for (unsigned long round = 0; !atomic_load(&stopping); round++) {
		switch (w->kind) {
		case W_MALLOC:
			malloc_round(&seed, slots, round);
			break;
		case W_DLOPEN:
			dlopen_round(round);
			break;
		case W_STDIO:
			stdio_round(round);
			break;
		case W_SPAWN:
			spawn_round(round);
			break;
		case W_CALL:
		case W_NOSIG:
			call_checked((int)(round % 100000));
			break;
		default:
			break;
		}
		atomic_fetch_add(&w->rounds, 1);
	}
	for (int i = 0; i < 64; i++)
		free(slots[i]);
	return NULL;
}

static void start_worker(struct worker *w)
{
	if (pthread_create(&w->thread, NULL, worker_main, w)) {
		reply("error pthread_create");
		exit(1);
	}
	w->running = true;
}

static void do_start(void)
{
	for (size_t i = 0; i < NWORKERS; i++)
		if (workers[i].kind != W_NOSIG && !workers[i].running)
			start_worker(&workers[i]);
	reply("started");
}

static void do_expect(const char *arg)
{
	int e;

	if (strcmp(arg, "new") == 0)
		e = EXPECT_NEW;
	else if (strcmp(arg, "old") == 0)
		e = EXPECT_OLD;
	else if (strcmp(arg, "any") == 0)
		e = EXPECT_ANY;
	else {
		reply("error expect new|old|any");
		return;
	}
	/* The generation first: a sample that sees the new value sees it. */
	atomic_fetch_add(&expect_gen, 1);
	atomic_store(&expect, e);
	atomic_fetch_add(&expect_gen, 1);
	reply("expect %s", arg);
}

/*
 * Wait, polling, until each running worker finished two more rounds: the
 * first may have begun before the last "expect".  A bounded poll (like the
 * tests' wait_until), not a timing assumption: a thread that does not get
 * there is stuck.
 */
static void do_progress(void)
{
	unsigned long start[NWORKERS];
	struct timespec tick = { 0, 1000000 };
	char stuck[256];
	bool done = false;

	for (size_t i = 0; i < NWORKERS; i++)
		start[i] = atomic_load(&workers[i].rounds);
	for (int ms = 0; !done && ms < PROGRESS_TIMEOUT_S * 1000; ms++) {
		done = true;
		for (size_t i = 0; i < NWORKERS; i++)
			if (workers[i].running && atomic_load(&workers[i].rounds) < start[i] + 2)
				done = false;
		if (!done)
			nanosleep(&tick, NULL);
	}
	if (done) {
		reply("progress");
		return;
	}
	strcpy(stuck, "stuck");
	for (size_t i = 0; i < NWORKERS; i++)
		if (workers[i].running && atomic_load(&workers[i].rounds) < start[i] + 2)
			snprintf(stuck + strlen(stuck), sizeof(stuck) - strlen(stuck), " %s",
				 workers[i].name);
	reply("%s", stuck);
}

static void do_stats(void)
{
	unsigned long n[W_KINDS] = { 0 };
	char out[256] = "";

	for (size_t i = 0; i < NWORKERS; i++)
		n[workers[i].kind] += atomic_load(&workers[i].rounds);
	for (int k = 0; k < W_KINDS; k++)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s %lu ", kind_names[k],
			 n[k]);
	reply("%sbad %lu", out, atomic_load(&bad));
}

/* The spinner: every signal blocked, so the runtime cannot look at it. */
static pthread_t spinner;
static bool spinner_started;
static atomic_bool spinning;
static int spin_go[2], spin_ack[2];
static volatile unsigned long spins;

static void *spinner_main(void *unused)
{
	char c;
	int r;

	(void)unused;
	pthread_setname_np(pthread_self(), "spinner");
	block_all_signals();
	for (;;) {
		if (read(spin_go[0], &c, 1) != 1 || c == 'q')
			return NULL;
		c = 's';
		if (write(spin_ack[1], &c, 1) != 1)
			abort();
		/* User code only: no system call, no patched function. */
		while (atomic_load_explicit(&spinning, memory_order_relaxed))
			spins++;
		r = churnval(5);
		if (write(spin_ack[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
			abort();
	}
}

static void do_spin(void)
{
	char c = 'g';

	if (!spinner_started) {
		if (pthread_create(&spinner, NULL, spinner_main, NULL)) {
			reply("error pthread_create");
			exit(1);
		}
		spinner_started = true;
	}
	atomic_store(&spinning, true);
	if (write(spin_go[1], &c, 1) != 1 || read(spin_ack[0], &c, 1) != 1)
		abort();
	reply("spinning");
}

static void do_unspin(void)
{
	int r;

	atomic_store(&spinning, false);
	if (read(spin_ack[0], &r, sizeof(r)) != (ssize_t)sizeof(r))
		abort();
	reply("unspun %d", r);
}

static void stop_all(void)
{
	char c = 'q';

	atomic_store(&stopping, true);
	for (size_t i = 0; i < NWORKERS; i++)
		if (workers[i].running)
			pthread_join(workers[i].thread, NULL);
	if (spinner_started) {
		atomic_store(&spinning, false);
		if (write(spin_go[1], &c, 1) != 1)
			abort();
		pthread_join(spinner, NULL);
	}
}

int main(int argc, char **argv)
{
	char line[256], *arg;

	libdemo_path = argc > 1 ? argv[1] : NULL;
	devnull = fopen("/dev/null", "w");
	if (!devnull || pipe(spin_go) || pipe(spin_ack)) {
		perror("churn: setup");
		return 1;
	}
	target_ready();
	while (next_command(line, sizeof(line), &arg)) {
		if (strcmp(line, "start") == 0)
			do_start();
		else if (strcmp(line, "expect") == 0)
			do_expect(arg);
		else if (strcmp(line, "progress") == 0)
			do_progress();
		else if (strcmp(line, "stats") == 0)
			do_stats();
		else if (strcmp(line, "lib") == 0 &&
			 (strcmp(arg, "patched") == 0 || strcmp(arg, "unpatched") == 0)) {
			atomic_store(&lib_patched, strcmp(arg, "patched") == 0);
			reply("lib %s", arg);
		}
		else if (strcmp(line, "call") == 0)
			reply("%d", churnval(int_arg(arg)));
		else if (strcmp(line, "nosig") == 0) {
			if (!workers[NWORKERS - 1].running)
				start_worker(&workers[NWORKERS - 1]);
			reply("nosig started");
		} else if (strcmp(line, "spin") == 0)
			do_spin();
		else if (strcmp(line, "unspin") == 0)
			do_unspin();
		else if (strcmp(line, "quit") == 0)
			break;
		else
			reply("error unknown command %s", line);
	}
	stop_all();
	fclose(devnull);
	reply("bye");
	return 0;
}
