/* SPDX-License-Identifier: MIT */
/*
 * callcost.h - what bench/callcost.c and its patch bench/callcost_fix.c
 * share: the thread that holds a transition open runs its work through
 * bench_hold(), a function of the patch, so that it is never switched.
 */
#ifndef LP_BENCH_CALLCOST_H
#define LP_BENCH_CALLCOST_H

struct bench_hold {
	int (*run)(struct bench_hold *h);
};

/* The function every variant of the call benchmark calls: 3x + bias. */
int bench_tiny(int x);
int bench_hold(struct bench_hold *h);

#endif
