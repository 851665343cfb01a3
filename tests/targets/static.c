/* SPDX-License-Identifier: MIT */
/*
 * static - a statically linked program (tests/e2e/84-inject-exit.sh: the
 * injector refuses it).  Prints "ready", then echoes its input lines.
 */
#include <stdio.h>

int main(void)
{
	char line[256];

	puts("ready");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		fputs(line, stdout);
		fflush(stdout);
	}
	return 0;
}
