// SPDX-License-Identifier: MIT
/*
 * accounts - the target of the shadow-variable example: a login service
 * whose sessions have no count of failed logins, so a password can be
 * guessed without limit.  examples/shadow/lockout.c adds the count to the
 * sessions of the running program as a shadow variable.
 *
 * One command per line on stdin, one reply line each on stdout:
 *
 *   open USER          start a session: "session N"
 *   login N PASSWORD   try a password: "welcome USER" or "wrong password"
 *   close N            end session N: "closed N"
 *   quit               "bye"
 *
 * It prints "ready" first, so that tests/e2e/78-shadow.sh can drive it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The functions lockout.c replaces or calls: noipa keeps each whole under
 * its own name, where an optimiser could inline or clone it (in a real
 * program, `nm` shows what the compiler left).
 */
#define PATCHABLE __attribute__((noipa))

struct session {
	unsigned int id;
	char user[16];
	/* Missing: failed logins, to lock a session after a few. */
};

#define MAX_SESSIONS 64
static struct session *sessions[MAX_SESSIONS + 1]; /* by id; 0 is unused */
static unsigned int last_id;

/* lockout.c calls it too, through a symbol reference: noipa keeps it a function. */
static PATCHABLE const char *password_of(const char *user)
{
	static const char *const users[][2] = {
		{ "alice", "wonderland" },
		{ "bob", "builder" },
	};

	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++)
		if (strcmp(users[i][0], user) == 0)
			return users[i][1];
	return NULL;
}

PATCHABLE struct session *session_open(const char *user)
{
	struct session *s;

	if (last_id == MAX_SESSIONS)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->id = ++last_id;
	snprintf(s->user, sizeof(s->user), "%s", user);
	return s;
}

PATCHABLE const char *session_login(struct session *s, const char *password)
{
	const char *want = password_of(s->user);

	return want && strcmp(want, password) == 0 ? "welcome" : "wrong password";
}

PATCHABLE void session_close(struct session *s)
{
	sessions[s->id] = NULL;
	free(s);
}

/* The session named by the number at the start of @arg, or NULL. */
static struct session *session_arg(const char *arg, const char **rest)
{
	char *end;
	unsigned long id = strtoul(arg, &end, 10);

	*rest = *end == ' ' ? end + 1 : end;
	return end != arg && id <= MAX_SESSIONS ? sessions[id] : NULL;
}

static void command(char *line)
{
	char *arg = strchr(line, ' ');
	const char *rest;
	struct session *s;

	arg = arg ? (*arg = '\0', arg + 1) : line + strlen(line);
	if (strcmp(line, "open") == 0) {
		s = session_open(arg);
		if (s) {
			sessions[s->id] = s;
			printf("session %u\n", s->id);
		} else {
			puts("no more sessions");
		}
	} else if (strcmp(line, "login") != 0 && strcmp(line, "close") != 0) {
		puts("unknown command");
	} else if ((s = session_arg(arg, &rest)) == NULL) {
		puts("no such session");
	} else if (strcmp(line, "login") == 0) {
		const char *answer = session_login(s, rest);

		if (strcmp(answer, "welcome") == 0)
			printf("welcome %s\n", s->user);
		else
			puts(answer);
	} else {
		unsigned int id = s->id;

		session_close(s);
		printf("closed %u\n", id);
	}
}

int main(void)
{
	char line[256];

	setvbuf(stdout, NULL, _IOLBF, 0);
	puts("ready");
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, "quit") == 0) {
			puts("bye");
			return 0;
		}
		command(line);
	}
	return 0;
}
