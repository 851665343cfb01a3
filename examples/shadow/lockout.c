// SPDX-License-Identifier: MIT
/*
 * lockout - a live fix for examples/shadow/accounts.c: a session is locked
 * after three wrong passwords in a row.  struct session has no field for
 * the count, and the running program's sessions cannot grow one, so the
 * fix keeps it in a shadow variable attached to each session:
 *
 *   session_open()   allocates it for every new session;
 *   session_login()  uses it, and allocates it for a session opened before
 *                    the fix, which has none;
 *   session_close()  frees it with the session;
 *   post_unpatch     frees those of the sessions still open when the fix is
 *                    reverted, since the runtime frees nothing by itself.
 *
 * The count's constructor and destructor log to the event log
 * (`lpatch log PID`), to show when each runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lpatch.h>

/* The target's struct, as accounts.c defines it: the fix cannot change it. */
struct session {
	unsigned int id;
	char user[16];
};
#define MAX_SESSIONS 64

/* The shadow variable: its id, and what it holds. */
#define SV_LOCKOUT   1
#define MAX_FAILURES 3

struct lockout {
	unsigned int session; /* the session's id, for the log */
	int failures;	      /* wrong passwords in a row */
};

/* The target's static function and variable, found by symbol references. */
static const char *(*password_of)(const char *user);
static unsigned int *last_id;
static struct session **sessions;

static int lockout_ctor(void *obj, void *shadow_data, void *ctor_data)
{
	const struct session *s = obj;
	struct lockout *l = shadow_data;

	(void)ctor_data;
	l->session = s->id;
	lp_printf("lockout: session %u: counting failed logins", l->session);
	return 0;
}

/*
 * It reads its own data, not the session: a count can outlive its session,
 * when the original session_close() of a thread that had not switched to
 * the fix yet freed it; lp_shadow_free_all() then finds that count too.
 */
static void lockout_dtor(void *obj, void *shadow_data)
{
	const struct lockout *l = shadow_data;

	(void)obj;
	lp_printf("lockout: session %u: count freed", l->session);
}

static struct lockout *lockout_of(struct session *s)
{
	return lp_shadow_get_or_alloc(s, SV_LOCKOUT, sizeof(struct lockout), lockout_ctor, NULL);
}

/* The original, and the shadow variable of the new session. */
static struct session *new_session_open(const char *user)
{
	struct session *s;

	if (*last_id == MAX_SESSIONS)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->id = ++*last_id;
	snprintf(s->user, sizeof(s->user), "%s", user);
	/* A new session has no count: one found is a stale one (above), at a reused address. */
	lp_shadow_free(s, SV_LOCKOUT, lockout_dtor);
	/* Without memory for it the session still works: login tries again. */
	lp_shadow_alloc(s, SV_LOCKOUT, sizeof(struct lockout), lockout_ctor, NULL);
	return s;
}

static const char *new_session_login(struct session *s, const char *password)
{
	const char *want = password_of(s->user);
	struct lockout *l = lockout_of(s);

	if (l && l->failures >= MAX_FAILURES)
		return "locked";
	if (want && strcmp(want, password) == 0) {
		if (l)
			l->failures = 0;
		return "welcome";
	}
	if (l && ++l->failures == MAX_FAILURES)
		lp_printf("lockout: session %u: locked after %d failed logins", s->id, MAX_FAILURES);
	return "wrong password";
}

/* The shadow variable goes with its session: freed first, then the original's work. */
static void new_session_close(struct session *s)
{
	lp_shadow_free(s, SV_LOCKOUT, lockout_dtor);
	sessions[s->id] = NULL;
	free(s);
}

/* No thread runs the new functions any more: free the counts left. */
static void post_unpatch(struct lp_object *obj)
{
	(void)obj;
	lp_shadow_free_all(SV_LOCKOUT, lockout_dtor);
}

static struct lp_func funcs[] = {
	{ .old_name = "session_open", .new_func = new_session_open },
	{ .old_name = "session_login", .new_func = new_session_login },
	{ .old_name = "session_close", .new_func = new_session_close },
	{ 0 }
};

static struct lp_symbol syms[] = {
	LP_SYMBOL("password_of", password_of),
	LP_SYMBOL("last_id", last_id),
	LP_SYMBOL("sessions", sessions),
	{ 0 }
};

static struct lp_object objs[] = {
	{ .name = NULL, .funcs = funcs, .syms = syms, .callbacks = { .post_unpatch = post_unpatch } },
	{ 0 }
};

LP_PATCH(.objs = objs);
