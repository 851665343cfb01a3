/* SPDX-License-Identifier: MIT */
/* common.c - the line protocol shared by the test targets (see common.h). */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include "common.h"

/* Append "0x<hex>" to buf at *len (async-signal-safe). */
static void put_hex(char *buf, size_t *len, unsigned long v)
{
	char digits[16];
	int n = 0;

	buf[(*len)++] = '0';
	buf[(*len)++] = 'x';
	do {
		digits[n++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	while (n)
		buf[(*len)++] = digits[--n];
}

static void put_str(char *buf, size_t *len, const char *s)
{
	while (*s)
		buf[(*len)++] = *s++;
}

/*
 * A crash is a test failure; say where it happened (the test prints the
 * target's stderr), then die of the same signal.
 */
static void crash_report(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;
	char buf[160];
	size_t len = 0;

	put_str(buf, &len, "target: crashed with signal ");
	if (sig >= 10)
		buf[len++] = (char)('0' + sig / 10);
	buf[len++] = (char)('0' + sig % 10);
	put_str(buf, &len, " at ip ");
	put_hex(buf, &len, (unsigned long)uc->uc_mcontext.gregs[REG_RIP]);
	put_str(buf, &len, ", fault address ");
	put_hex(buf, &len, (unsigned long)si->si_addr);
	buf[len++] = '\n';
	if (write(STDERR_FILENO, buf, len) < 0)
		_exit(128 + sig);
	/* SA_RESETHAND restored the default action: returning re-faults. */
}

void target_ready(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE };
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = crash_report;
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	reply("ready");
}

int next_command(char *buf, int size, char **arg)
{
	char *sp;

	if (!fgets(buf, size, stdin))
		return 0;
	buf[strcspn(buf, "\n")] = '\0';
	sp = strchr(buf, ' ');
	if (sp) {
		*sp = '\0';
		*arg = sp + 1;
	} else {
		*arg = buf + strlen(buf);
	}
	return 1;
}

void reply(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

int int_arg(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || end == s || *end != '\0') {
		fprintf(stderr, "target: bad number '%s'\n", s);
		exit(2);
	}
	return (int)v;
}
