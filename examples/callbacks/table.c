// SPDX-License-Identifier: MIT
/*
 * A "server" that computes a price table once, at start-up, with price(),
 * and answers from the table every tick.  price() has the shop's bug (10%
 * off for every order); fixing the function alone would not change the
 * table already computed with it.  examples/callbacks/fix_table.c fixes
 * both: the function, and in its callbacks the table.
 */
#include <stdio.h>
#include <time.h>

#define ITEMS 16

static int table[ITEMS]; /* price of n items at 1.00, in cents */

__attribute__((noinline)) int price(int items, int unit_cents)
{
	int total = items * unit_cents;

	return total - total / 10; /* bug: 10% off for everybody */
}

/* Called by the patch's callbacks too, through a symbol reference. */
__attribute__((noinline)) void rebuild_table(void)
{
	for (int n = 0; n < ITEMS; n++)
		table[n] = price(n, 100);
}

int main(void)
{
	static const int orders[] = { 1, 3, 12 };
	struct timespec tick = { 0, 300 * 1000 * 1000 };

	setvbuf(stdout, NULL, _IOLBF, 0);
	rebuild_table();
	for (unsigned n = 0;; n++) {
		int items = orders[n % 3];

		printf("order %u: %2d items = %d.%02d\n", n, items, table[items] / 100,
		       table[items] % 100);
		nanosleep(&tick, NULL);
	}
}
