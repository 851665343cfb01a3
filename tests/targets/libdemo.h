/* SPDX-License-Identifier: MIT */
/* libdemo.h - a tiny shared library the demo target links (libdemo.so). */
#ifndef LP_TEST_LIBDEMO_H
#define LP_TEST_LIBDEMO_H

int demo_lib_value(int x);	/* x * 11 + 3 */

#endif
