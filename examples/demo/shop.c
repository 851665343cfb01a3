// SPDX-License-Identifier: MIT
/*
 * The demo's "server": it prices an order once per tick and prints the
 * result.  price() has a bug: the discount for ten items or more is
 * applied to every order.  examples/demo/fix.c corrects it live.
 */
#include <stdio.h>
#include <time.h>

__attribute__((noinline)) int price(int items, int unit_cents)
{
	int total = items * unit_cents;

	return total - total / 10; /* bug: 10% off for everybody */
}

int main(void)
{
	static const int orders[] = { 1, 3, 12 };
	struct timespec tick = { 0, 300 * 1000 * 1000 };

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (unsigned n = 0;; n++) {
		int items = orders[n % 3];

		printf("order %u: %2d items at 1.00 = %d.%02d\n", n, items,
		       price(items, 100) / 100, price(items, 100) % 100);
		nanosleep(&tick, NULL);
	}
}
