/* SPDX-License-Identifier: MIT */
/*
 * callcost - the cost of a call to a tiny function, direct, through one
 * extra jump (onejmp.S), and through whatever lpatch put at its entry.
 *
 *   time R N   R rounds, each timing N calls of every variant in turn (the
 *              order rotates), on this thread; medians in ns per call:
 *              "direct D onejmp J tiny T impl old|new"
 *   hold       a holder thread enters bench_hold(), a function of the
 *              patch, and waits there: a transition started now stays open
 *              and the holder is never switched.  "holding"
 *   go R N     the holder times the calls as "time" does, from inside
 *              bench_hold(): the same answer
 *   release    the holder returns and exits: "released"
 *   quit       "bye"
 *
 * Every variant runs the same code, 3x + bias; the patch's bench_tiny()
 * adds one more, which tells "impl" which one the calls reached.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "callcost.h"
#include "common.h"

#define MAX_ROUNDS 101
#define NVARIANTS  3

static volatile int bias = 1;

int bench_direct(int x);
int bench_onejmp(int x); /* onejmp.S: jmp bench_direct */

PATCHABLE int bench_direct(int x)
{
	return x * 3 + bias;
}

PATCHABLE int bench_tiny(int x)
{
	return x * 3 + bias;
}

static volatile int holds;

/*
 * The frame-pointer prologue and the count keep the call out of the bytes
 * the entry jump displaces; the + 1 keeps bench_hold() on the stack while
 * run() runs.
 */
__attribute__((noipa, optimize("no-omit-frame-pointer", "no-shrink-wrap"))) int
bench_hold(struct bench_hold *h)
{
	holds = holds + 1;
	return h->run(h) + 1;
}

/* One loop per variant, each with a direct call to its function. */
#define CALL_LOOP(name, fn)                                                                        \
	__attribute__((noipa, aligned(64))) static unsigned name(unsigned n)                       \
	{                                                                                          \
		unsigned acc = 0;                                                                  \
		for (unsigned i = 0; i < n; i++)                                                   \
			acc += (unsigned)fn((int)i);                                               \
		return acc;                                                                        \
	}
CALL_LOOP(loop_direct, bench_direct)
CALL_LOOP(loop_onejmp, bench_onejmp)
CALL_LOOP(loop_tiny, bench_tiny)

static unsigned (*const loops[NVARIANTS])(unsigned) = {loop_direct, loop_onejmp, loop_tiny};

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Time every variant @rounds times, interleaved, and format the medians. */
static void measure(int rounds, unsigned n, char *out, size_t len)
{
	double ns[NVARIANTS][MAX_ROUNDS], med[NVARIANTS];
	unsigned sum[NVARIANTS] = {0};

	if (rounds < 1 || rounds > MAX_ROUNDS || n < 1) {
		snprintf(out, len, "error time R N: 1 <= R <= %d, N >= 1", MAX_ROUNDS);
		return;
	}
	for (int r = 0; r < rounds; r++) {
		for (int k = 0; k < NVARIANTS; k++) {
			int v = (r + k) % NVARIANTS;
			double t0 = now_ns();

			sum[v] = loops[v](n);
			ns[v][r] = (now_ns() - t0) / n;
		}
	}
	for (int v = 0; v < NVARIANTS; v++)
		med[v] = median(ns[v], rounds);
	snprintf(out, len, "direct %.3f onejmp %.3f tiny %.3f impl %s", med[0], med[1], med[2],
		 sum[2] == sum[0]	? "old"
		 : sum[2] == sum[0] + n ? "new"
					: "neither");
}

/* The holder thread's side: commands and answers over two pipes. */
struct holder {
	struct bench_hold hold;
	pthread_t thread;
	int cmd[2], ans[2];
	int rounds;
	unsigned n;
	char result[128];
};

static struct holder holder;

static void send_byte(int fd, char c)
{
	if (write(fd, &c, 1) != 1)
		abort();
}

static char recv_byte(int fd)
{
	char c;

	if (read(fd, &c, 1) != 1)
		abort();
	return c;
}

static int holder_run(struct bench_hold *h)
{
	struct holder *hd = (struct holder *)h;

	send_byte(hd->ans[1], 'h');
	while (recv_byte(hd->cmd[0]) == 'm') {
		measure(hd->rounds, hd->n, hd->result, sizeof(hd->result));
		send_byte(hd->ans[1], 'd');
	}
	return 0;
}

static void *holder_main(void *arg)
{
	pthread_setname_np(pthread_self(), "holder");
	bench_hold(arg);
	return NULL;
}

static void do_hold(void)
{
	if (holder.thread) {
		reply("error already holding");
		return;
	}
	holder.hold.run = holder_run;
	if (pipe(holder.cmd) || pipe(holder.ans) ||
	    pthread_create(&holder.thread, NULL, holder_main, &holder.hold))
		abort();
	recv_byte(holder.ans[0]);
	reply("holding");
}

static void parse_rn(const char *arg, int *rounds, unsigned *n)
{
	*rounds = 0;
	*n = 0;
	if (sscanf(arg, "%d %u", rounds, n) != 2)
		*rounds = 0;
}

static void do_go(const char *arg)
{
	if (!holder.thread) {
		reply("error not holding");
		return;
	}
	parse_rn(arg, &holder.rounds, &holder.n);
	send_byte(holder.cmd[1], 'm');
	recv_byte(holder.ans[0]);
	reply("%s", holder.result);
}

static void do_release(void)
{
	if (!holder.thread) {
		reply("error not holding");
		return;
	}
	send_byte(holder.cmd[1], 'q');
	pthread_join(holder.thread, NULL);
	for (int i = 0; i < 2; i++) {
		close(holder.cmd[i]);
		close(holder.ans[i]);
	}
	holder.thread = 0;
	reply("released");
}

int main(void)
{
	char line[256], *arg, out[128];
	unsigned n;
	int rounds;

	target_ready();
	while (next_command(line, sizeof(line), &arg)) {
		if (strcmp(line, "time") == 0) {
			parse_rn(arg, &rounds, &n);
			measure(rounds, n, out, sizeof(out));
			reply("%s", out);
		} else if (strcmp(line, "hold") == 0) {
			do_hold();
		} else if (strcmp(line, "go") == 0) {
			do_go(arg);
		} else if (strcmp(line, "release") == 0) {
			do_release();
		} else if (strcmp(line, "quit") == 0) {
			break;
		} else {
			reply("error unknown command %s", line);
		}
	}
	reply("bye");
	return 0;
}
