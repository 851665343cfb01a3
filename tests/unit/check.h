/* SPDX-License-Identifier: MIT */
/* A minimal assertion helper for the unit tests: each failed check prints
 * where and what, and the test exits non-zero at the end. */
#ifndef LP_TEST_CHECK_H
#define LP_TEST_CHECK_H

#include <stdio.h>

static int check_failures;

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
				#cond);                                          \
			check_failures++;                                        \
		}                                                                \
	} while (0)

#define CHECK_EQ(a, b)                                                           \
	do {                                                                     \
		long long a_ = (long long)(a), b_ = (long long)(b);              \
		if (a_ != b_) {                                                  \
			fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", \
				__FILE__, __LINE__, #a, #b, a_, b_);             \
			check_failures++;                                        \
		}                                                                \
	} while (0)

#define CHECK_DONE() (check_failures ? (fprintf(stderr, "%d check(s) failed\n", check_failures), 1) : 0)

#endif
