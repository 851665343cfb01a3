/* SPDX-License-Identifier: MIT */
/*
 * pairs - two functions that must agree on a format: encode() builds a
 * value, decode() reads it back, run_pair() does one then the other.
 * patches/pair_fix.c changes the format of both and replaces run_pair()
 * too, so the consistency model keeps a thread inside run_pair() on one
 * version for the whole pair.  A thread that encodes with one version and
 * decodes with the other gets a mismatch, which the threads count.
 *
 *   start N   start N threads calling run_pair(x) for varying x; "started"
 *   stats     "calls C mismatches M patched P": run_pair() calls so far,
 *             those that mixed the formats, and those the patch's
 *             run_pair() answered
 *   which     "encode E decode D run_pair R", each "old" or "new": the
 *             versions the main thread gets ("bad" for neither)
 *   hold      start a thread calling run_pair(-1), which parks it inside
 *             the original run_pair() between encode() and decode();
 *             "held" once it is there
 *   release   let it go on; "released R", R being what run_pair() answered:
 *             "old", "new" or "mismatch"
 *   stop      stop and join the threads, then reply like "stats"
 *   quit      "bye", exit 0
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "pairs.h"

#define MAX_THREADS 16

/*
 * Reading a variable first makes encode() and decode() long enough for the
 * entry jump (as hammer.c's hot()), with no branch in the bytes it displaces.
 */
static volatile int pair_one = 1;

int encode(int x);
int decode(int v);
int run_pair(int x);

static int hold_notify[2] = { -1, -1 };	 /* held thread -> main */
static int hold_release[2] = { -1, -1 }; /* main -> held thread */
static pthread_t held;
static int held_result;

/*
 * Called by the original run_pair() for a negative x, with the value
 * encoded and not yet decoded: tell main, wait for "release".
 */
static __attribute__((noinline)) void pair_hold(void)
{
	char c = 'h';

	if (write(hold_notify[1], &c, 1) != 1)
		abort();
	while (read(hold_release[0], &c, 1) != 1)
		if (errno != EINTR)
			abort();
}

PATCHABLE int encode(int x)
{
	return 2 * x + pair_one;
}

PATCHABLE int decode(int v)
{
	return (v - pair_one) / 2;
}

PATCHABLE int run_pair(int x)
{
	int v = encode(x);

	if (x < 0)
		pair_hold();
	pair_work();
	return decode(v) == x ? PAIR_OLD : PAIR_MISMATCH;
}

/* One per thread and cache line: the counters must not slow the loop. */
struct counters {
	_Atomic unsigned long calls, mismatches, patched;
} __attribute__((aligned(64)));

static struct counters counts[MAX_THREADS];
static pthread_t threads[MAX_THREADS];
static int nthreads;
static atomic_bool stopping;

static void *worker(void *p)
{
	struct counters *c = p;
	/* Each thread its own sequence of x, all within 0 .. 2^20 - 1. */
	unsigned int i = (unsigned int)(c - counts) * 7919u;

	while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
		int x = (int)((i++ * 40503u) & 0xfffff);
		int r = run_pair(x);

		if (r == PAIR_NEW)
			atomic_fetch_add_explicit(&c->patched, 1, memory_order_relaxed);
		else if (r != PAIR_OLD)
			atomic_fetch_add_explicit(&c->mismatches, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&c->calls, 1, memory_order_relaxed);
	}
	return NULL;
}

static void print_stats(void)
{
	unsigned long calls = 0, mismatches = 0, patched = 0;

	for (int i = 0; i < MAX_THREADS; i++) {
		calls += atomic_load(&counts[i].calls);
		mismatches += atomic_load(&counts[i].mismatches);
		patched += atomic_load(&counts[i].patched);
	}
	reply("calls %lu mismatches %lu patched %lu", calls, mismatches, patched);
}

static void do_start(const char *arg)
{
	int n = int_arg(arg);

	if (nthreads || n < 1 || n > MAX_THREADS) {
		reply("error start: already running or N not in 1..%d", MAX_THREADS);
		return;
	}
	atomic_store(&stopping, false);
	for (nthreads = 0; nthreads < n; nthreads++)
		if (pthread_create(&threads[nthreads], NULL, worker, &counts[nthreads]) != 0) {
			reply("error pthread_create");
			return;
		}
	reply("started");
}

static void do_stop(void)
{
	atomic_store(&stopping, true);
	for (int i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	nthreads = 0;
	print_stats();
}

/* "old" or "new" by what @got is, "bad" when neither. */
static const char *version(int got, int old, int new_)
{
	return got == old ? "old" : got == new_ ? "new" : "bad";
}

static void *hold_thread(void *unused)
{
	(void)unused;
	held_result = run_pair(-1);
	return NULL;
}

static void do_hold(void)
{
	char c;

	if (pthread_create(&held, NULL, hold_thread, NULL) != 0)
		abort();
	while (read(hold_notify[0], &c, 1) != 1)
		if (errno != EINTR)
			abort();
	reply("held");
}

static void do_release(void)
{
	char c = 'r';

	if (write(hold_release[1], &c, 1) != 1)
		abort();
	pthread_join(held, NULL);
	reply("released %s", held_result == PAIR_MISMATCH ? "mismatch"
							  : version(held_result, PAIR_OLD, PAIR_NEW));
}

/* Which version of each function the main thread gets. */
static void do_which(void)
{
	reply("encode %s decode %s run_pair %s", version(encode(1), 3, 1 ^ PAIR_KEY),
	      version(decode(3), 1, 3 ^ PAIR_KEY), version(run_pair(1), PAIR_OLD, PAIR_NEW));
}

int main(void)
{
	char line[256], *arg;

	if (pipe(hold_notify) || pipe(hold_release)) {
		perror("pipe");
		return 1;
	}
	target_ready();
	while (next_command(line, sizeof(line), &arg)) {
		if (strcmp(line, "start") == 0)
			do_start(arg);
		else if (strcmp(line, "stats") == 0)
			print_stats();
		else if (strcmp(line, "which") == 0)
			do_which();
		else if (strcmp(line, "hold") == 0)
			do_hold();
		else if (strcmp(line, "release") == 0)
			do_release();
		else if (strcmp(line, "stop") == 0)
			do_stop();
		else if (strcmp(line, "quit") == 0)
			break;
		else
			reply("error unknown command %s", line);
	}
	if (nthreads) {
		atomic_store(&stopping, true);
		for (int i = 0; i < nthreads; i++)
			pthread_join(threads[i], NULL);
	}
	reply("bye");
	return 0;
}
