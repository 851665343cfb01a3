/* SPDX-License-Identifier: MIT */
/*
 * libcbbusy.so - a library whose worker thread runs busy_work(), the
 * function the callbacks patch replaces (the kernel's
 * test_klp_callbacks_busy).  Loaded with CBBUSY_BLOCK=1 in the
 * environment, the worker stays inside busy_work() until the library is
 * unloaded, which holds the patch's transition open; otherwise it returns
 * at once.  The constructor returns once the worker's lines are logged,
 * so that the log has a fixed order.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common.h"
#include "log.h"

int busy_work(int block);

static pthread_t worker;
static int entered[2] = {-1, -1}, release[2] = {-1, -1};

PATCHABLE int busy_work(int block)
{
	char c = 'e';

	cb_log("cbbusy: busy_work enter");
	if (write(entered[1], &c, 1) != 1)
		abort();
	if (block && read(release[0], &c, 1) != 1)
		abort();
	cb_log("cbbusy: busy_work exit");
	return block;
}

static void *worker_main(void *arg)
{
	busy_work(arg != NULL);
	return NULL;
}

__attribute__((constructor)) static void cbbusy_init(void)
{
	const char *env = getenv("CBBUSY_BLOCK");
	bool block = env && strcmp(env, "1") == 0;
	char c;

	cb_log("cbbusy: init");
	if (pipe(entered) < 0 || pipe(release) < 0 ||
	    pthread_create(&worker, NULL, worker_main, block ? &worker : NULL) != 0 ||
	    read(entered[0], &c, 1) != 1)
		abort();
	if (!block)
		pthread_join(worker, NULL);
}

__attribute__((destructor)) static void cbbusy_exit(void)
{
	char c = 'r';

	if (write(release[1], &c, 1) != 1)
		abort();
	pthread_join(worker, NULL);
	cb_log("cbbusy: exit");
}
