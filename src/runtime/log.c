// SPDX-License-Identifier: MIT
/*
 * The event log: one line per step, in the spirit of the kernel's
 * "livepatch:" messages, kept in a ring so a long-lived process does not
 * grow.  `lpatch log PID` reads it; tests compare exact transcripts.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

#define LOG_LINES    2048
#define LOG_LINE_MAX 480

static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
static char log_ring[LOG_LINES][LOG_LINE_MAX];
static unsigned long log_next; /* lines written so far */

/* One line, after @prefix. */
static void log_line(const char *prefix, const char *fmt, va_list ap)
{
	size_t len = strlen(prefix);
	char *line;

	pthread_mutex_lock(&log_mutex);
	line = log_ring[log_next % LOG_LINES];
	memcpy(line, prefix, len);
	vsnprintf(line + len, LOG_LINE_MAX - len, fmt, ap);
	/* One event, one line, whatever a reason string contained. */
	for (char *p = line; *p; p++)
		if (*p == '\n')
			*p = ' ';
	log_next++;
	pthread_mutex_unlock(&log_mutex);
}

void lp_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line("lpatch: ", fmt, ap);
	va_end(ap);
}

/* The patches' own lines (lpatch.h). */
__attribute__((visibility("default"))) void lp_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line("", fmt, ap);
	va_end(ap);
}

char *lp_log_dump(size_t *len)
{
	unsigned long first;
	size_t used = 0;
	char *text;

	pthread_mutex_lock(&log_mutex);
	first = log_next > LOG_LINES ? log_next - LOG_LINES : 0;
	text = malloc((size_t)(log_next - first) * (LOG_LINE_MAX + 1) + 1);
	if (text) {
		for (unsigned long i = first; i < log_next; i++) {
			const char *line = log_ring[i % LOG_LINES];
			size_t n = strlen(line);

			memcpy(text + used, line, n);
			used += n;
			text[used++] = '\n';
		}
		text[used] = '\0';
	}
	pthread_mutex_unlock(&log_mutex);
	*len = used;
	return text;
}

/* A child forked while another thread held the lock must not inherit it. */
void lp_log_atfork_child(void)
{
	pthread_mutex_init(&log_mutex, NULL);
}
