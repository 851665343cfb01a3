/* SPDX-License-Identifier: MIT */
/*
 * pairs.h - what the "pairs" target (pairs.c) and its patch
 * (patches/pair_fix.c) share: the patch's key and the work done between
 * encoding and decoding.
 */
#ifndef LP_TEST_PAIRS_H
#define LP_TEST_PAIRS_H

/* The patched format: encode(x) = x ^ PAIR_KEY (originally 2 * x + 1). */
#define PAIR_KEY 0x5a5a5a

/* run_pair()'s answers. */
#define PAIR_MISMATCH 0 /* decode(encode(x)) != x: the formats were mixed */
#define PAIR_OLD      1 /* a match, answered by the original run_pair() */
#define PAIR_NEW      2 /* a match, answered by the patch's run_pair() */

/*
 * Work between encode() and decode(), so that a thread spends a good part
 * of its time inside run_pair() with the value encoded but not yet decoded.
 * Without the consistency model such a thread switches there and decodes
 * with the other format (tests/e2e/64-consistency.sh counts on it); with
 * it, run_pair() on the stack holds the thread back.
 */
static inline __attribute__((always_inline)) void pair_work(void)
{
	for (volatile int i = 0; i < 200; i++)
		;
}

#endif
