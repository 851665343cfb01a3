/* SPDX-License-Identifier: MIT */
/*
 * libhold.so - a library whose constructor keeps the thread that loads it
 * inside the dynamic loader, holding its lock (blocker's "holdloader",
 * tests/e2e/84-inject-exit.sh): it writes a byte to the descriptor named by
 * BLOCKER_HELD_FD, then waits for good on BLOCKER_HOLD_FD.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((constructor)) static void hold(void)
{
	const char *held = getenv("BLOCKER_HELD_FD"), *hold = getenv("BLOCKER_HOLD_FD");
	char c = 'h';

	if (!held || !hold || write(atoi(held), &c, 1) != 1)
		return;
	while (read(atoi(hold), &c, 1) < 0 && errno == EINTR)
		;
}
