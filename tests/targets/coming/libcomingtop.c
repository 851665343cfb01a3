/* SPDX-License-Identifier: MIT */
/*
 * libcomingtop.so - a library that needs libcoming.so: loading it loads
 * libcoming.so as its dependency (tests/e2e/46-coming.sh).
 */
int coming_value(int x);
int coming_top(int x);

int coming_top(int x)
{
	return coming_value(x) + 1;
}
