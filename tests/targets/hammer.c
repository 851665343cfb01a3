/* SPDX-License-Identifier: MIT */
/*
 * hammer - threads calling a patched function in tight loops.
 *
 *   start   start NTHREADS threads calling hot(i) for i = 0, 1, 2, ...;
 *           a result that is neither hot's (3i + 1) nor patches/hot_fix.c's
 *           (3i + 2) counts as bad.  Reply "started".
 *   stats   "calls C old O new N bad B" (totals so far)
 *   stop    stop and join the threads, then reply like "stats"
 *   quit    "bye", exit 0
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common.h"

#define NTHREADS 4

int hot(int x);

static volatile int hot_bias = 1;

PATCHABLE int hot(int x)
{
	return x * 3 + hot_bias;
}

struct counters {
	_Atomic unsigned long calls, old, new_, bad;
} __attribute__((aligned(64)));

static struct counters counts[NTHREADS];
static atomic_bool stopping;
static pthread_t threads[NTHREADS];

static void *worker(void *p)
{
	struct counters *c = p;
	unsigned int i = 0;

	while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
		int x = (int)(i++ & 0xffffff);
		int r = hot(x);

		if (r == 3 * x + 1)
			atomic_fetch_add_explicit(&c->old, 1, memory_order_relaxed);
		else if (r == 3 * x + 2)
			atomic_fetch_add_explicit(&c->new_, 1, memory_order_relaxed);
		else
			atomic_fetch_add_explicit(&c->bad, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&c->calls, 1, memory_order_relaxed);
	}
	return NULL;
}

static void print_stats(void)
{
	unsigned long calls = 0, old = 0, new_ = 0, bad = 0;

	for (int i = 0; i < NTHREADS; i++) {
		calls += atomic_load(&counts[i].calls);
		old += atomic_load(&counts[i].old);
		new_ += atomic_load(&counts[i].new_);
		bad += atomic_load(&counts[i].bad);
	}
	reply("calls %lu old %lu new %lu bad %lu", calls, old, new_, bad);
}

int main(void)
{
	char line[256], *arg;
	int running = 0;

	target_ready();
	while (next_command(line, sizeof(line), &arg)) {
		if (strcmp(line, "start") == 0 && !running) {
			for (int i = 0; i < NTHREADS; i++)
				if (pthread_create(&threads[i], NULL, worker,
						   &counts[i]) != 0) {
					reply("error pthread_create");
					return 1;
				}
			running = 1;
			reply("started");
		} else if (strcmp(line, "stats") == 0) {
			print_stats();
		} else if (strcmp(line, "stop") == 0 && running) {
			atomic_store(&stopping, true);
			for (int i = 0; i < NTHREADS; i++)
				pthread_join(threads[i], NULL);
			running = 0;
			print_stats();
		} else if (strcmp(line, "quit") == 0) {
			break;
		} else {
			reply("error unknown command %s", line);
		}
	}
	reply("bye");
	return 0;
}
