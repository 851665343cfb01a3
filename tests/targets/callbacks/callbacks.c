/* SPDX-License-Identifier: MIT */
/*
 * callbacks - loads and unloads libcbmod.so and libcbbusy.so for the
 * callback scenarios of the kernel's test-callbacks.sh
 * (tests/e2e/56-callbacks.sh).  Each command logs itself ("% ...") to the
 * lpatch event log, as the kernel test's transcript shows its commands.
 *
 *   callbacks DIR          DIR holds libcbmod.so and libcbbusy.so
 *
 *   load mod|busy [block]  dlopen() one; "block": the busy worker stays
 *                          inside busy_work() until unloaded.  "loaded"
 *   unload mod|busy        dlclose() it: "unloaded"
 *   preret N               patches' pre_patch callbacks return N from now
 *                          on (they read cb_pre_patch_ret): "preret N"
 *   mark TEXT              log "% TEXT": "marked"
 *   quit                   "bye"
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common.h"
#include "log.h"

/* What the callbacks patches' pre_patch return (their LP_SYMBOL). */
volatile int cb_pre_patch_ret;

static const char *dir;
static void *libs[2];

static int lib_index(const char *name)
{
	if (strncmp(name, "mod", 3) == 0)
		return 0;
	if (strncmp(name, "busy", 4) == 0)
		return 1;
	return -1;
}

static void cmd_load(const char *arg)
{
	static const char *const files[2] = {"libcbmod.so", "libcbbusy.so"};
	int i = lib_index(arg);
	char path[4096];
	bool block = strstr(arg, "block") != NULL;

	if (i < 0 || libs[i]) {
		reply("error load %s", arg);
		return;
	}
	cb_log("%% load %s%s", files[i], block ? " block" : "");
	setenv("CBBUSY_BLOCK", block ? "1" : "0", 1);
	snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
	libs[i] = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (libs[i])
		reply("loaded");
	else
		reply("error %s", dlerror());
}

static void cmd_unload(const char *arg)
{
	static const char *const files[2] = {"libcbmod.so", "libcbbusy.so"};
	int i = lib_index(arg);

	if (i < 0 || !libs[i]) {
		reply("error unload %s", arg);
		return;
	}
	cb_log("%% unload %s", files[i]);
	dlclose(libs[i]);
	libs[i] = NULL;
	reply("unloaded");
}

int main(int argc, char **argv)
{
	char line[256], *arg;

	if (argc != 2) {
		fprintf(stderr, "usage: callbacks DIR\n");
		return 2;
	}
	dir = argv[1];
	target_ready();
	while (next_command(line, sizeof(line), &arg)) {
		if (strcmp(line, "load") == 0) {
			cmd_load(arg);
		} else if (strcmp(line, "unload") == 0) {
			cmd_unload(arg);
		} else if (strcmp(line, "preret") == 0) {
			cb_pre_patch_ret = int_arg(arg);
			reply("preret %d", cb_pre_patch_ret);
		} else if (strcmp(line, "mark") == 0) {
			cb_log("%% %s", arg);
			reply("marked");
		} else if (strcmp(line, "quit") == 0) {
			break;
		} else {
			reply("error unknown command %s", line);
		}
	}
	reply("bye");
	return 0;
}
