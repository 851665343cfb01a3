// SPDX-License-Identifier: MIT
/*
 * A "server" with a setting, max_clients, that its operators want raised
 * without a restart, and a function, greeting(), with a typo.  The two
 * cumulative patches examples/states/limit_v1.c and limit_v2.c raise the
 * setting as system state 1; limit_v2 also fixes the typo, and takes the
 * raised setting over from limit_v1 without raising it twice.
 */
#include <stdio.h>
#include <time.h>

int max_clients = 100;
int formal = 1;

__attribute__((noinline)) const char *greeting(void)
{
	return formal ? "Wellcome" : "Hi"; /* typo */
}

int main(void)
{
	struct timespec tick = { 0, 300 * 1000 * 1000 };

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (unsigned n = 0;; n++) {
		printf("tick %u: %s, up to %d clients\n", n, greeting(), max_clients);
		nanosleep(&tick, NULL);
	}
}
