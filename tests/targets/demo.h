/* SPDX-License-Identifier: MIT */
/* demo.h - the functions of the "demo" target that the tests patch. */
#ifndef LP_TEST_DEMO_H
#define LP_TEST_DEMO_H

int compute(int x);		/* demo.c: x * 3 + 7; x < 0 parks the thread */
int use_secret(int x);		/* demo.c: secret_scale(x) + 1, x * x + 2 */
int stacked(int x);		/* demo.c: x * 19 + 3 */
int demo_cmp_int(const void *a, const void *b); /* demo.c: qsort order */
int path1(int x);		/* statics1.c: static helper(x) = x * x + 10 */
int path2(int x);		/* statics2.c: static helper(x) = x * x + 20 */
int cet_func(int x);		/* cet.c (endbr64): x * 13 + 1 */
int pad_func(int x);		/* pad.c (5 nops of padding): x * 17 + 2 */
int too_short(int x);		/* asmfuncs.S: 3 bytes, returns 0 */
int loop_back(int x);		/* asmfuncs.S: loop into its first 5 bytes */

#endif
