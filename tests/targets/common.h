/* SPDX-License-Identifier: MIT */
/*
 * common.h - the line protocol shared by the test targets.
 *
 * A target reads one command per line on stdin and answers each with exactly
 * one line on stdout.  It prints "ready" once its setup is done, answers
 * "quit" with "bye" and exits 0.  tests/e2e/lib.sh drives it over fifos.
 */
#ifndef LP_TEST_TARGET_COMMON_H
#define LP_TEST_TARGET_COMMON_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Functions the tests patch: never inlined, cloned or analysed across calls,
 * so each exists once under its own name and every call goes through it.
 */
#define PATCHABLE __attribute__((noipa))

/* Make stdout line buffered and print "ready". */
void target_ready(void);

/*
 * Read the next command into buf (without the newline); return 0 at end of
 * input.  *arg points after the first space (or to "" when there is none).
 */
int next_command(char *buf, int size, char **arg);

/* Print one reply line (printf format, newline added) and flush it. */
void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parse an int argument; exits with a message on stderr if it is not one. */
int int_arg(const char *s);

#ifdef __cplusplus
}
#endif

#endif
