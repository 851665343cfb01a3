/* SPDX-License-Identifier: MIT */
/*
 * demo - the general-purpose test target (built as PIE "demo" and as
 * "demo-nopie").  Commands, one reply line each:
 *
 *   call NAME N     call int NAME(int) (see demo.h) and print the result
 *   block           start a thread parked inside compute(); "blocked" once
 *                   it is there
 *   release         let it return; "released R" with compute's result
 *   zver            print zlibVersion()          (libz.so.1)
 *   level           "level N": the value of demo_loglevel, a setting
 *                   the state patches change (tests/e2e/58-states.sh)
 *   sort N...       qsort the numbers, print them (libc.so.6)
 *   quit            "bye", exit 0
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "common.h"
#include "demo.h"
#include "libdemo.h"

static int park_notify[2] = { -1, -1 };	 /* parked thread -> main */
static int park_release[2] = { -1, -1 }; /* main -> parked thread */
static pthread_t parked;
static int parked_result;

/* A setting of the process that a patch's callbacks change and restore. */
static volatile int demo_loglevel = 4;

/* Called from compute(): tell main we are inside, wait for "release". */
static PATCHABLE int park_here(int x)
{
	char c = 'p';

	if (write(park_notify[1], &c, 1) != 1)
		abort();
	while (read(park_release[0], &c, 1) != 1)
		if (errno != EINTR)
			abort();
	return x;
}

/*
 * The frame-pointer prologue (push %rbp; mov %rsp,%rbp) keeps the simple
 * case simple: no branch among the first bytes the entry jump displaces.
 */
__attribute__((noipa, optimize("no-omit-frame-pointer", "no-shrink-wrap")))
int compute(int x)
{
	if (x < 0)
		x = park_here(-x); /* compute stays on this thread's stack */
	return x * 3 + 7;
}

/* A static function: only .symtab knows it (patches/static_fix.c). */
static PATCHABLE int secret_scale(int x)
{
	return x * x + 1;
}

static volatile int secret_offset = 1;

/*
 * Reading secret_offset first keeps the call out of the first five bytes:
 * lpatch refuses to displace a call.
 */
PATCHABLE int use_secret(int x)
{
	int offset = secret_offset;

	return secret_scale(x) + offset;
}

PATCHABLE int stacked(int x)
{
	return x * 19 + 3;
}

/* The ascending order; patches/qsort_fix.c reverses it for this comparator. */
int demo_cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

static const struct {
	const char *name;
	int (*fn)(int);
} funcs[] = {
	{ "compute", compute },		{ "use_secret", use_secret },
	{ "stacked", stacked },		{ "path1", path1 },
	{ "path2", path2 },		{ "demo_lib_value", demo_lib_value },
	{ "cet_func", cet_func },	{ "pad_func", pad_func },
	{ "too_short", too_short },	{ "loop_back", loop_back },
};

static void do_call(char *arg)
{
	char *sp = strchr(arg, ' ');
	size_t i;

	if (!sp) {
		reply("error usage: call NAME N");
		return;
	}
	*sp = '\0';
	for (i = 0; i < sizeof(funcs) / sizeof(funcs[0]); i++) {
		if (strcmp(funcs[i].name, arg) == 0) {
			reply("%d", funcs[i].fn(int_arg(sp + 1)));
			return;
		}
	}
	reply("error unknown function %s", arg);
}

static void *park_thread(void *unused)
{
	(void)unused;
	parked_result = compute(-1);
	return NULL;
}

static void do_block(void)
{
	char c;

	if (pthread_create(&parked, NULL, park_thread, NULL) != 0)
		abort();
	while (read(park_notify[0], &c, 1) != 1)
		if (errno != EINTR)
			abort();
	reply("blocked");
}

static void do_release(void)
{
	char c = 'r';

	if (write(park_release[1], &c, 1) != 1)
		abort();
	pthread_join(parked, NULL);
	reply("released %d", parked_result);
}

static void do_sort(char *arg)
{
	int v[64], n = 0;
	char out[64 * 12] = "", *tok, *save = NULL;

	for (tok = strtok_r(arg, " ", &save); tok && n < 64;
	     tok = strtok_r(NULL, " ", &save))
		v[n++] = int_arg(tok);
	qsort(v, n, sizeof(v[0]), demo_cmp_int);
	for (int i = 0; i < n; i++)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%d",
			 i ? " " : "", v[i]);
	reply("%s", out);
}

int main(void)
{
	char line[1024], *arg;

	if (pipe(park_notify) || pipe(park_release)) {
		perror("pipe");
		return 1;
	}
	target_ready();
	while (next_command(line, sizeof(line), &arg)) {
		if (strcmp(line, "call") == 0)
			do_call(arg);
		else if (strcmp(line, "block") == 0)
			do_block();
		else if (strcmp(line, "release") == 0)
			do_release();
		else if (strcmp(line, "zver") == 0)
			reply("%s", zlibVersion());
		else if (strcmp(line, "level") == 0)
			reply("level %d", demo_loglevel);
		else if (strcmp(line, "sort") == 0)
			do_sort(arg);
		else if (strcmp(line, "quit") == 0)
			break;
		else
			reply("error unknown command %s", line);
	}
	reply("bye");
	return 0;
}
