// SPDX-License-Identifier: MIT
/*
 * Shadow variables (src/runtime/shadow.c): every rule lpatch.h states, a
 * forked child, then 16 threads allocating, reading and freeing at once.
 * Each variable the threads make carries a serial number, so that every
 * destructor can be counted; the sanitizer build's LeakSanitizer reports
 * any variable left behind.
 */
#include "runtime/runtime.h"
#include "../check.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- The event log ---------------------------------------------------- */

/* The last line of the event log, or "" when it is empty. */
static const char *last_log_line(void)
{
	static char last[512];
	size_t len;
	char *text = lp_log_dump(&len), *end, *start;

	last[0] = '\0';
	if (text && len) {
		end = text + len - 1; /* the final newline */
		*end = '\0';
		start = strrchr(text, '\n');
		start = start ? start + 1 : text;
		snprintf(last, sizeof(last), "%s", start);
	}
	free(text);
	return last;
}

static size_t log_lines(void)
{
	size_t len, n = 0;
	char *text = lp_log_dump(&len);

	for (size_t i = 0; i < len; i++)
		n += text[i] == '\n';
	free(text);
	return n;
}

#define CHECK_LOG(...)                                                                             \
	do {                                                                                       \
		char want_[512];                                                                   \
		snprintf(want_, sizeof(want_), __VA_ARGS__);                                       \
		if (strcmp(last_log_line(), want_) != 0) {                                         \
			fprintf(stderr, "%s:%d: last log line '%s', expected '%s'\n", __FILE__,    \
				__LINE__, last_log_line(), want_);                                 \
			check_failures++;                                                          \
		}                                                                                  \
	} while (0)

/* ---- Constructors and destructors that record their calls ---------------- */

struct call {
	int n;
	void *obj, *data, *arg;
	bool zeroed; /* the data was all zero when the constructor saw it */
};
static struct call ctor_seen, dtor_seen;

static bool all_zero(const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (((const unsigned char *)p)[i])
			return false;
	return true;
}

/* Copies the int at ctor_data into the variable. */
static int ctor_int(void *obj, void *data, void *arg)
{
	ctor_seen = (struct call){ctor_seen.n + 1, obj, data, arg, all_zero(data, sizeof(int))};
	*(int *)data = *(int *)arg;
	return 0;
}

static int ctor_fail(void *obj, void *data, void *arg)
{
	ctor_seen = (struct call){ctor_seen.n + 1, obj, data, arg, true};
	return -5;
}

static void dtor_record(void *obj, void *data)
{
	dtor_seen = (struct call){dtor_seen.n + 1, obj, data, NULL, false};
}

static void reset_calls(void)
{
	memset(&ctor_seen, 0, sizeof(ctor_seen));
	memset(&dtor_seen, 0, sizeof(dtor_seen));
}

static char objs[16][8]; /* objects: only their addresses matter */

/* ---- The rules of lpatch.h, one thread ------------------------------------ */

static void test_get_alloc(void)
{
	unsigned char *a, *b, *c;
	size_t lines;

	reset_calls();
	CHECK(lp_shadow_get(objs[0], 1) == NULL);

	a = lp_shadow_alloc(objs[0], 1, 64, NULL, NULL);
	CHECK(a != NULL);
	CHECK(all_zero(a, 64));
	CHECK_EQ((uintptr_t)a % alignof(max_align_t), 0);
	memset(a, 0xa5, 64);
	CHECK(lp_shadow_get(objs[0], 1) == a);

	/* Another id of the same object, the same id of another object. */
	CHECK(lp_shadow_get(objs[0], 2) == NULL);
	CHECK(lp_shadow_get(objs[1], 1) == NULL);
	b = lp_shadow_alloc(objs[0], 2, 8, NULL, NULL);
	c = lp_shadow_alloc(objs[1], 1, 8, NULL, NULL);
	CHECK(b != NULL && c != NULL && b != a && c != a && b != c);
	CHECK(lp_shadow_get(objs[0], 2) == b);
	CHECK(lp_shadow_get(objs[1], 1) == c);

	/* A duplicate: refused with a warning, the first one untouched, no ctor. */
	lines = log_lines();
	CHECK(lp_shadow_alloc(objs[0], 1, 64, ctor_int, &(int){1}) == NULL);
	CHECK_EQ(ctor_seen.n, 0);
	CHECK_EQ(log_lines(), lines + 1);
	CHECK_LOG("lpatch: duplicate shadow variable <%p, 0x1>", (void *)objs[0]);
	CHECK(lp_shadow_get(objs[0], 1) == a);
	CHECK(a[0] == 0xa5 && a[63] == 0xa5);

	/* free: the dtor sees the object and the data, once; then it is gone. */
	lp_shadow_free(objs[0], 1, dtor_record);
	CHECK_EQ(dtor_seen.n, 1);
	CHECK(dtor_seen.obj == objs[0] && dtor_seen.data == a);
	CHECK(lp_shadow_get(objs[0], 1) == NULL);
	CHECK(lp_shadow_get(objs[0], 2) == b);
	lp_shadow_free(objs[0], 1, dtor_record);
	CHECK_EQ(dtor_seen.n, 1);

	/* Freed, the key can be allocated again. */
	a = lp_shadow_alloc(objs[0], 1, 4, NULL, NULL);
	CHECK(a != NULL && all_zero(a, 4));
	lp_shadow_free(objs[0], 1, NULL);
	lp_shadow_free(objs[0], 2, NULL);
	lp_shadow_free(objs[1], 1, NULL);
	CHECK(lp_shadow_get(objs[0], 1) == NULL && lp_shadow_get(objs[0], 2) == NULL &&
	      lp_shadow_get(objs[1], 1) == NULL);
	CHECK_EQ(log_lines(), lines + 1);
}

static void test_ctor(void)
{
	int val = 42, other = 7;
	int *p, *q;
	size_t lines;

	reset_calls();
	p = lp_shadow_alloc(objs[2], 7, sizeof(int), ctor_int, &val);
	CHECK(p != NULL);
	CHECK_EQ(ctor_seen.n, 1);
	CHECK(ctor_seen.obj == objs[2] && ctor_seen.data == p && ctor_seen.arg == &val);
	CHECK(ctor_seen.zeroed);
	CHECK_EQ(*p, 42);

	/* get_or_alloc: the existing one, without its ctor; a new one, with. */
	CHECK(lp_shadow_get_or_alloc(objs[2], 7, sizeof(int), ctor_int, &other) == p);
	CHECK_EQ(ctor_seen.n, 1);
	CHECK_EQ(*p, 42);
	q = lp_shadow_get_or_alloc(objs[2], 8, sizeof(int), ctor_int, &other);
	CHECK(q != NULL && q != p);
	CHECK_EQ(ctor_seen.n, 2);
	CHECK_EQ(*q, 7);
	CHECK(lp_shadow_get(objs[2], 8) == q);
	lp_shadow_free(objs[2], 8, NULL);

	/* A failing ctor: NULL, nothing stored, an error logged. */
	lines = log_lines();
	CHECK(lp_shadow_alloc(objs[2], 8, sizeof(int), ctor_fail, NULL) == NULL);
	CHECK_EQ(ctor_seen.n, 3);
	CHECK(lp_shadow_get(objs[2], 8) == NULL);
	CHECK_LOG("lpatch: failed to construct shadow variable <%p, 0x8> (-5)", (void *)objs[2]);
	CHECK(lp_shadow_get_or_alloc(objs[2], 8, sizeof(int), ctor_fail, NULL) == NULL);
	CHECK_EQ(ctor_seen.n, 4);
	CHECK(lp_shadow_get(objs[2], 8) == NULL);
	CHECK_EQ(log_lines(), lines + 2);
	q = lp_shadow_get_or_alloc(objs[2], 8, sizeof(int), ctor_int, &other);
	CHECK(q != NULL && *q == 7);
	CHECK_EQ(ctor_seen.n, 5);

	lp_shadow_free(objs[2], 7, NULL);
	lp_shadow_free(objs[2], 8, NULL);
}

/* A ctor that tries every lp_shadow_* call: each is refused. */
static int refused_results;
static int ctor_reentrant(void *obj, void *data, void *arg)
{
	(void)obj;
	(void)data;
	refused_results = 0;
	refused_results += lp_shadow_get(arg, 1) == NULL;
	refused_results += lp_shadow_alloc(arg, 2, 1, NULL, NULL) == NULL;
	refused_results += lp_shadow_get_or_alloc(arg, 3, 1, NULL, NULL) == NULL;
	lp_shadow_free(arg, 1, NULL);
	lp_shadow_free_all(1, NULL);
	return 0;
}

static void test_ctor_reentry(void)
{
	void *existing = lp_shadow_alloc(objs[4], 1, 1, NULL, NULL);
	size_t lines = log_lines();

	CHECK(lp_shadow_alloc(objs[3], 9, 1, ctor_reentrant, objs[4]) != NULL);
	CHECK_EQ(refused_results, 3);
	CHECK_EQ(log_lines(), lines + 5);
	CHECK_LOG("lpatch: lp_shadow_free_all() called from a shadow variable constructor: "
		  "refused");
	/* The refused calls changed nothing; after the ctor, calls work again. */
	CHECK(lp_shadow_get(objs[4], 1) == existing);
	CHECK(lp_shadow_get(objs[4], 2) == NULL && lp_shadow_get(objs[4], 3) == NULL);
	lp_shadow_free(objs[4], 1, NULL);
	lp_shadow_free(objs[3], 9, NULL);
	CHECK(lp_shadow_get(objs[4], 1) == NULL && lp_shadow_get(objs[3], 9) == NULL);
}

/* A dtor may use shadow variables: this one frees a related one. */
static void dtor_chain(void *obj, void *data)
{
	(void)data;
	lp_shadow_free(obj, 2, dtor_record);
}

static void test_dtor_reentry(void)
{
	void *second;

	reset_calls();
	CHECK(lp_shadow_alloc(objs[5], 1, 1, NULL, NULL) != NULL);
	second = lp_shadow_alloc(objs[5], 2, 1, NULL, NULL);
	lp_shadow_free(objs[5], 1, dtor_chain);
	CHECK_EQ(dtor_seen.n, 1);
	CHECK(dtor_seen.obj == objs[5] && dtor_seen.data == second);
	CHECK(lp_shadow_get(objs[5], 1) == NULL && lp_shadow_get(objs[5], 2) == NULL);
}

static int freed_mask;
static void dtor_mark(void *obj, void *data)
{
	int i = (int)((char(*)[8])obj - objs);

	CHECK(*(int *)data == i);
	CHECK((freed_mask & (1 << i)) == 0);
	freed_mask |= 1 << i;
}

static void test_free_all(void)
{
	for (int i = 0; i < 10; i++) {
		CHECK(lp_shadow_alloc(objs[i], 100, sizeof(int), ctor_int, &i) != NULL);
		CHECK(lp_shadow_alloc(objs[i], 101, sizeof(int), ctor_int, &i) != NULL);
	}
	freed_mask = 0;
	lp_shadow_free_all(100, dtor_mark);
	CHECK_EQ(freed_mask, (1 << 10) - 1);
	for (int i = 0; i < 10; i++) {
		int *p = lp_shadow_get(objs[i], 101);

		CHECK(lp_shadow_get(objs[i], 100) == NULL);
		CHECK(p != NULL && *p == i);
	}
	freed_mask = 0;
	lp_shadow_free_all(100, dtor_mark);
	CHECK_EQ(freed_mask, 0);
	lp_shadow_free_all(101, dtor_mark);
	CHECK_EQ(freed_mask, (1 << 10) - 1);
	for (int i = 0; i < 10; i++)
		CHECK(lp_shadow_get(objs[i], 101) == NULL);
}

static void test_sizes(void)
{
	void *a = lp_shadow_alloc(objs[6], 1, 0, NULL, NULL);
	void *b = lp_shadow_alloc(objs[6], 2, 0, NULL, NULL);

	CHECK(a != NULL && b != NULL && a != b);
	CHECK(lp_shadow_get(objs[6], 1) == a);
	CHECK(lp_shadow_alloc(objs[6], 3, SIZE_MAX, NULL, NULL) == NULL);
	CHECK(lp_shadow_get_or_alloc(objs[6], 3, SIZE_MAX, NULL, NULL) == NULL);
	CHECK(lp_shadow_get(objs[6], 3) == NULL);
	lp_shadow_free(objs[6], 1, NULL);
	lp_shadow_free(objs[6], 2, NULL);
}

/* Enough keys for every stripe to grow several times. */
#define NMANY 200000
static char many[NMANY];

static void test_many(void)
{
	for (long i = 0; i < NMANY; i++) {
		long *p = lp_shadow_alloc(&many[i], (unsigned long)i % 3, sizeof(long), NULL, NULL);

		if (!p) {
			CHECK(p != NULL);
			return;
		}
		*p = i;
	}
	for (long i = 0; i < NMANY; i += 2)
		lp_shadow_free(&many[i], (unsigned long)i % 3, NULL);
	for (long i = 0; i < NMANY; i++) {
		long *p = lp_shadow_get(&many[i], (unsigned long)i % 3);

		if (i % 2 ? !p || *p != i : p != NULL) {
			CHECK(!"the right variables survive");
			break;
		}
	}
	for (unsigned long id = 0; id < 3; id++)
		lp_shadow_free_all(id, NULL);
	for (long i = 0; i < NMANY; i++)
		if (lp_shadow_get(&many[i], (unsigned long)i % 3)) {
			CHECK(!"free_all freed everything");
			break;
		}
}

/* A child forked while the table is in use finds its variables and can use it. */
static void test_fork(void)
{
	int *p = lp_shadow_alloc(objs[7], 1, sizeof(int), ctor_int, &(int){99});
	int status;
	pid_t pid;

	pthread_atfork(lp_shadow_atfork_prepare, lp_shadow_atfork_parent, lp_shadow_atfork_child);
	pid = fork();
	if (pid == 0) {
		int *q = lp_shadow_get(objs[7], 1);
		bool ok = q == p && *q == 99 && lp_shadow_alloc(objs[7], 2, 1, NULL, NULL);

		lp_shadow_free_all(1, NULL);
		lp_shadow_free_all(2, NULL);
		_exit(ok && !lp_shadow_get(objs[7], 1) ? 0 : 1);
	}
	CHECK(pid > 0);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* The parent's table is untouched by the child and unlocked. */
	CHECK(lp_shadow_get(objs[7], 1) == p && lp_shadow_get(objs[7], 2) == NULL);
	lp_shadow_free(objs[7], 1, NULL);
}

/* ---- 16 threads at once ---------------------------------------------------- */

#define NTHREADS    16
#define NSHARED	    1024
#define NPRIV	    256
#define ROUNDS	    20
#define NCHURN	    512
#define MAX_SERIALS (1 << 18)
enum { ID_SHARED = 1, ID_PRIV = 2, ID_CHURN = 3 };

/* What each variable the threads make holds. */
struct rec {
	unsigned long serial;
	void *obj;
	unsigned long id;
};

static char shared[NSHARED], priv[NTHREADS][NPRIV], churn[NCHURN];
static struct rec *got[NTHREADS][NSHARED]; /* phase 1: what each thread got */
static _Atomic unsigned long next_serial;
static _Atomic unsigned char dtors[MAX_SERIALS];
static _Atomic int ctors_shared[NSHARED];
static _Atomic int thread_failures;
static _Atomic int churners = NTHREADS - 1; /* phase 4: still churning */
static pthread_barrier_t barrier;

#define T_CHECK(cond)                                                                              \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			thread_failures++;                                                         \
		}                                                                                  \
	} while (0)

static int ctor_rec(void *obj, void *data, void *arg)
{
	struct rec *r = data;

	r->serial = next_serial++;
	r->obj = obj;
	r->id = (unsigned long)(uintptr_t)arg;
	if (r->id == ID_SHARED)
		ctors_shared[(char *)obj - shared]++;
	return r->serial < MAX_SERIALS ? 0 : -1;
}

static void dtor_rec(void *obj, void *data)
{
	struct rec *r = data;

	T_CHECK(r->obj == obj);
	if (r->serial < MAX_SERIALS)
		dtors[r->serial]++;
}

static struct rec *make(void *obj, unsigned long id, bool get_or_alloc)
{
	void *arg = (void *)(uintptr_t)id;

	return get_or_alloc ? lp_shadow_get_or_alloc(obj, id, sizeof(struct rec), ctor_rec, arg)
			    : lp_shadow_alloc(obj, id, sizeof(struct rec), ctor_rec, arg);
}

static void *worker(void *arg)
{
	int t = (int)(intptr_t)arg;

	/* 1. All threads race get_or_alloc on the same keys, in the same order. */
	pthread_barrier_wait(&barrier);
	for (int k = 0; k < NSHARED; k++)
		got[t][k] = make(&shared[k], ID_SHARED, true);
	pthread_barrier_wait(&barrier);

	/* 2. Each allocates and frees its own keys, reading shared ones between. */
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < NPRIV; i++) {
			struct rec *p = make(&priv[t][i], ID_PRIV, i % 2);
			int k = (i * 7 + t * 13 + r) % NSHARED;
			struct rec *s = lp_shadow_get(&shared[k], ID_SHARED);

			T_CHECK(p != NULL && p->obj == &priv[t][i] && p->id == ID_PRIV);
			T_CHECK(lp_shadow_get(&priv[t][i], ID_PRIV) == p);
			T_CHECK(s == got[0][k] && s->obj == &shared[k]);
		}
		for (int i = 0; i < NPRIV; i++) {
			lp_shadow_free(&priv[t][i], ID_PRIV, dtor_rec);
			T_CHECK(lp_shadow_get(&priv[t][i], ID_PRIV) == NULL);
		}
	}
	pthread_barrier_wait(&barrier);

	/* 3. Frees from both ends and free_all race for the shared keys. */
	if (t % 2)
		lp_shadow_free_all(ID_SHARED, dtor_rec);
	else
		for (int i = 0; i < NSHARED; i++)
			lp_shadow_free(&shared[t % 4 ? NSHARED - 1 - i : i], ID_SHARED, dtor_rec);
	pthread_barrier_wait(&barrier);

	/* 4. Churn: get_or_alloc and free of common keys while thread 0 frees all. */
	if (t == 0) {
		while (churners)
			lp_shadow_free_all(ID_CHURN, dtor_rec);
	} else {
		for (int r = 0; r < ROUNDS * NPRIV; r++) {
			int k = (r * 31 + t) % NCHURN;
			struct rec *p = make(&churn[k], ID_CHURN, true);

			T_CHECK(p != NULL);
			if (r % 3 == 0)
				lp_shadow_free(&churn[k], ID_CHURN, dtor_rec);
		}
		churners--;
	}
	return NULL;
}

static void test_threads(void)
{
	pthread_t th[NTHREADS];
	unsigned long serials;
	size_t wrong = 0;

	pthread_barrier_init(&barrier, NULL, NTHREADS);
	for (int t = 0; t < NTHREADS; t++)
		CHECK(pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t) == 0);
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	pthread_barrier_destroy(&barrier);
	lp_shadow_free_all(ID_CHURN, dtor_rec);
	CHECK_EQ(thread_failures, 0);

	/* get_or_alloc: one variable per key, one constructor, whoever won. */
	for (int k = 0; k < NSHARED; k++) {
		CHECK_EQ(ctors_shared[k], 1);
		CHECK(got[0][k] != NULL);
		for (int t = 1; t < NTHREADS; t++)
			if (got[t][k] != got[0][k])
				wrong++;
		CHECK(lp_shadow_get(&shared[k], ID_SHARED) == NULL);
	}
	CHECK_EQ(wrong, 0);

	/* Every variable made was destroyed exactly once. */
	serials = next_serial;
	CHECK(serials < MAX_SERIALS);
	CHECK(serials > NSHARED + (unsigned long)NTHREADS * NPRIV * ROUNDS);
	for (unsigned long s = 0; s < serials && s < MAX_SERIALS; s++)
		if (dtors[s] != 1)
			wrong++;
	CHECK_EQ(wrong, 0);
	for (int k = 0; k < NCHURN; k++)
		CHECK(lp_shadow_get(&churn[k], ID_CHURN) == NULL);
}

int main(void)
{
	test_get_alloc();
	test_ctor();
	test_ctor_reentry();
	test_dtor_reentry();
	test_free_all();
	test_sizes();
	test_many();
	test_fork();
	test_threads();
	return CHECK_DONE();
}
