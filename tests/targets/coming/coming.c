/* SPDX-License-Identifier: MIT */
/*
 * coming - loads and unloads libcoming.so (tests/e2e/46-49).
 *
 *   coming LIBCOMING      LIBCOMING: the path of libcoming.so
 *
 *   load          dlopen() it: "loaded C V", C what its constructor got
 *                 from coming_value(10), V what coming_value(10) gives now
 *   call N        "R" = coming_value(N) of the loaded library
 *   unload        dlclose() it: "unloaded"
 *   nsload        dlmopen() another copy in a new link-map namespace:
 *                 "nsloaded V", V its coming_value(10)
 *   block         a thread parks inside hold(): "blocked"
 *   release       it returns: "released R", R = hold()'s result
 *   loop          a thread loads, checks and unloads the library over and
 *                 over: each load's two values must be ones "expect"
 *                 allows, else it counts as bad.  "looping"
 *   expect V...   from now on values must be one of V...; "expect" with
 *                 no value allows any.  Answers once the loop has done a
 *                 whole load under the new rule: "expect V..."
 *   stop          the loop ends: "loads N bad B"
 *   quit          "bye"
 *
 * hold(x) is x + 1 (patches may change it); coming_value(x) is 2x + 1.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common.h"

#define MAX_EXPECT 8

int hold(int x);

static const char *lib_path;
static void *lib;

static int park_notify[2], park_release[2];
static pthread_t parked;
static int parked_result;

/* What the loop accepts: a generation moves with every change. */
static pthread_mutex_t expect_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t expect_cond = PTHREAD_COND_INITIALIZER;
static int allowed[MAX_EXPECT], nallowed;
static unsigned long expect_gen, checked_gen;
static atomic_bool looping;
static pthread_t loop_thread;
static unsigned long loads, bad;

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

PATCHABLE int hold(int x)
{
	if (x < 0)
		x = park_here(-x);
	return x + 1;
}

/* Load @path, report what its constructor and coming_value(10) gave. */
static void *load_lib(Lmid_t ns, int *ctor, int *now)
{
	void *h = ns == LM_ID_BASE ? dlopen(lib_path, RTLD_NOW | RTLD_LOCAL)
				   : dlmopen(ns, lib_path, RTLD_NOW | RTLD_LOCAL);
	int (*fn)(int);
	int *c;

	if (!h)
		return NULL;
	fn = (int (*)(int))dlsym(h, "coming_value");
	c = dlsym(h, "coming_ctor_result");
	if (!fn || !c) {
		dlclose(h);
		return NULL;
	}
	*ctor = *c;
	*now = fn(10);
	return h;
}

static bool is_allowed(int v)
{
	if (!nallowed)
		return true;
	for (int i = 0; i < nallowed; i++)
		if (allowed[i] == v)
			return true;
	return false;
}

static void *loop_main(void *arg)
{
	(void)arg;
	while (atomic_load(&looping)) {
		unsigned long gen;
		int ctor, now;
		void *h;

		pthread_mutex_lock(&expect_lock);
		gen = expect_gen;
		pthread_mutex_unlock(&expect_lock);
		h = load_lib(LM_ID_BASE, &ctor, &now);
		if (!h) {
			fprintf(stderr, "coming: load failed: %s\n", dlerror());
			bad++;
			continue;
		}
		loads++;
		dlclose(h);
		pthread_mutex_lock(&expect_lock);
		/* Only a load that ran entirely under one rule is judged by it. */
		if (gen == expect_gen) {
			if (!is_allowed(ctor) || !is_allowed(now)) {
				fprintf(stderr, "coming: load %lu gave %d and %d\n", loads, ctor,
					now);
				bad++;
			}
			checked_gen = gen;
			pthread_cond_broadcast(&expect_cond);
		}
		pthread_mutex_unlock(&expect_lock);
	}
	return NULL;
}

static void cmd_expect(char *arg)
{
	char *tok, *save = NULL, out[160] = "expect";

	pthread_mutex_lock(&expect_lock);
	nallowed = 0;
	for (tok = strtok_r(arg, " ", &save); tok && nallowed < MAX_EXPECT;
	     tok = strtok_r(NULL, " ", &save)) {
		allowed[nallowed++] = int_arg(tok);
		snprintf(out + strlen(out), sizeof(out) - strlen(out), " %s", tok);
	}
	expect_gen++;
	while (atomic_load(&looping) && checked_gen != expect_gen)
		pthread_cond_wait(&expect_cond, &expect_lock);
	pthread_mutex_unlock(&expect_lock);
	reply("%s", out);
}

static void *park_main(void *arg)
{
	(void)arg;
	parked_result = hold(-9);
	return NULL;
}

static void cmd_block(void)
{
	char c;

	if (pipe(park_notify) < 0 || pipe(park_release) < 0 ||
	    pthread_create(&parked, NULL, park_main, NULL) != 0 || read(park_notify[0], &c, 1) != 1)
		abort();
	reply("blocked");
}

static void cmd_release(void)
{
	char c = 'r';

	if (write(park_release[1], &c, 1) != 1 || pthread_join(parked, NULL) != 0)
		abort();
	close(park_notify[0]);
	close(park_notify[1]);
	close(park_release[0]);
	close(park_release[1]);
	reply("released %d", parked_result);
}

static void cmd_load(void)
{
	int ctor, now;

	if (lib) {
		reply("error loaded already");
		return;
	}
	lib = load_lib(LM_ID_BASE, &ctor, &now);
	if (lib)
		reply("loaded %d %d", ctor, now);
	else
		reply("error %s", dlerror());
}

static void cmd_call(const char *arg)
{
	int (*fn)(int) = lib ? (int (*)(int))dlsym(lib, "coming_value") : NULL;

	if (fn)
		reply("%d", fn(int_arg(arg)));
	else
		reply("error not loaded");
}

static void cmd_unload(void)
{
	if (!lib || dlclose(lib) != 0) {
		reply("error not loaded");
		return;
	}
	lib = NULL;
	reply("unloaded");
}

static void cmd_nsload(void)
{
	int ctor, now;

	if (load_lib(LM_ID_NEWLM, &ctor, &now))
		reply("nsloaded %d", now);
	else
		reply("error %s", dlerror());
}

static void cmd_loop(void)
{
	atomic_store(&looping, true);
	if (pthread_create(&loop_thread, NULL, loop_main, NULL) != 0)
		abort();
	reply("looping");
}

static void cmd_stop(void)
{
	atomic_store(&looping, false);
	pthread_join(loop_thread, NULL);
	reply("loads %lu bad %lu", loads, bad);
}

int main(int argc, char **argv)
{
	char line[256], *arg;

	if (argc != 2) {
		fprintf(stderr, "usage: coming LIBCOMING\n");
		return 2;
	}
	lib_path = argv[1];
	target_ready();
	while (next_command(line, sizeof(line), &arg)) {
		if (strcmp(line, "load") == 0)
			cmd_load();
		else if (strcmp(line, "call") == 0)
			cmd_call(arg);
		else if (strcmp(line, "unload") == 0)
			cmd_unload();
		else if (strcmp(line, "nsload") == 0)
			cmd_nsload();
		else if (strcmp(line, "block") == 0)
			cmd_block();
		else if (strcmp(line, "release") == 0)
			cmd_release();
		else if (strcmp(line, "loop") == 0)
			cmd_loop();
		else if (strcmp(line, "expect") == 0)
			cmd_expect(arg);
		else if (strcmp(line, "stop") == 0)
			cmd_stop();
		else if (strcmp(line, "quit") == 0)
			break;
		else
			reply("error unknown command %s", line);
	}
	reply("bye");
	return 0;
}
