// SPDX-License-Identifier: MIT
/*
 * Shadow variables (kernel: shadow.c): data that patches attach to objects
 * whose layout they cannot change, keyed by (object, id).  lpatch.h is the
 * contract, with what constructors and destructors may do.
 *
 * The table is split into stripes, each a chained hash table with its own
 * read-write lock, growing on its own.  A key's hash picks its stripe, so
 * threads working on different keys rarely meet on a lock, and gets of one
 * stripe share its lock.  A constructor runs under its stripe's write lock:
 * that is what makes get_or_alloc's "exactly one" hold without a second
 * check.  A destructor runs once the variable is unlinked, with no lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>

#include "runtime.h"

/* lpatch.h's API, exported by the otherwise hidden runtime for patches to call. */
#define EXPORTED __attribute__((visibility("default")))

#define STRIPE_BITS 8
#define NSTRIPES    (1u << STRIPE_BITS)
#define MIN_BUCKETS 16
#define MAX_LOAD    2 /* variables per bucket before a stripe doubles */

struct shadow {
	struct shadow *next; /* in its bucket */
	void *obj;
	unsigned long id;
	alignas(max_align_t) unsigned char data[];
};

struct stripe {
	pthread_rwlock_t lock;
	struct shadow **buckets; /* NULL until the stripe's first variable */
	size_t mask;		 /* buckets - 1 */
	size_t count;
} __attribute__((aligned(64))); /* no two stripes share a cache line */

/* Writers first: a stream of gets must not starve an alloc or a free. */
#define STRIPE_LOCK_INIT PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP

static struct stripe stripes[NSTRIPES] = {
    [0 ... NSTRIPES - 1] = {.lock = STRIPE_LOCK_INIT},
};

/* Set while this thread runs a constructor, which holds a stripe's lock. */
static __thread bool in_ctor __attribute__((tls_model("initial-exec")));

/* A 64-bit mix (xor-shift-multiply) in which every key bit moves every hash bit. */
static uint64_t hash_key(const void *obj, unsigned long id)
{
	uint64_t h = (uint64_t)(uintptr_t)obj ^ ((uint64_t)id * 0x9e3779b97f4a7c15ull);

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

/* The top bits pick the stripe, the low bits the bucket in it. */
static struct stripe *stripe_of(uint64_t h)
{
	return &stripes[h >> (64 - STRIPE_BITS)];
}

/* Under s->lock. */
static struct shadow **find(const struct stripe *s, uint64_t h, const void *obj, unsigned long id)
{
	struct shadow **pp;

	if (!s->buckets)
		return NULL;
	for (pp = &s->buckets[h & s->mask]; *pp; pp = &(*pp)->next)
		if ((*pp)->obj == obj && (*pp)->id == id)
			return pp;
	return NULL;
}

/* Under s->lock, written: double the buckets; on failure the chains grow longer. */
static void grow(struct stripe *s)
{
	size_t n = s->buckets ? (s->mask + 1) * 2 : MIN_BUCKETS;
	struct shadow **b = calloc(n, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; s->buckets && i <= s->mask; i++) {
		struct shadow *v = s->buckets[i], *next;

		for (; v; v = next) {
			size_t j = hash_key(v->obj, v->id) & (n - 1);

			next = v->next;
			v->next = b[j];
			b[j] = v;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->mask = n - 1;
}

/* A constructor holds a stripe's lock: another lp_shadow_* call could deadlock. */
static bool refused(const char *what)
{
	if (__builtin_expect(!in_ctor, 1))
		return false;
	lp_log("lp_shadow_%s() called from a shadow variable constructor: refused", what);
	return true;
}

EXPORTED void *lp_shadow_get(void *obj, unsigned long id)
{
	uint64_t h = hash_key(obj, id);
	struct stripe *s = stripe_of(h);
	struct shadow **pp;
	void *data;

	if (refused("get"))
		return NULL;
	pthread_rwlock_rdlock(&s->lock);
	pp = find(s, h, obj, id);
	data = pp ? (*pp)->data : NULL;
	pthread_rwlock_unlock(&s->lock);
	return data;
}

static void *get_or_alloc(void *obj, unsigned long id, size_t size, lp_shadow_ctor_t ctor,
			  void *ctor_data, bool warn_on_exist)
{
	uint64_t h = hash_key(obj, id);
	struct stripe *s = stripe_of(h);
	struct shadow **pp, *v;

	if (size > SIZE_MAX - sizeof(*v)) {
		errno = ENOMEM;
		return NULL;
	}
	/* Allocated outside the lock, and thrown away if another thread wins. */
	v = calloc(1, sizeof(*v) + size);
	if (!v)
		return NULL;
	v->obj = obj;
	v->id = id;
	pthread_rwlock_wrlock(&s->lock);
	pp = find(s, h, obj, id);
	if (pp) {
		void *data = (*pp)->data;

		pthread_rwlock_unlock(&s->lock);
		free(v);
		if (!warn_on_exist)
			return data;
		lp_log("duplicate shadow variable <%p, 0x%lx>", obj, id);
		return NULL;
	}
	/* Room first: a constructed variable must not fail to be stored. */
	if (!s->buckets || s->count >= (s->mask + 1) * MAX_LOAD)
		grow(s);
	if (!s->buckets) {
		pthread_rwlock_unlock(&s->lock);
		free(v);
		errno = ENOMEM;
		return NULL;
	}
	if (ctor) {
		int ret;

		in_ctor = true;
		ret = ctor(obj, v->data, ctor_data);
		in_ctor = false;
		if (ret) {
			pthread_rwlock_unlock(&s->lock);
			free(v);
			lp_log("failed to construct shadow variable <%p, 0x%lx> (%d)", obj, id,
			       ret);
			return NULL;
		}
	}
	pp = &s->buckets[h & s->mask];
	v->next = *pp;
	*pp = v;
	s->count++;
	pthread_rwlock_unlock(&s->lock);
	return v->data;
}

EXPORTED void *lp_shadow_alloc(void *obj, unsigned long id, size_t size, lp_shadow_ctor_t ctor,
			       void *ctor_data)
{
	if (refused("alloc"))
		return NULL;
	return get_or_alloc(obj, id, size, ctor, ctor_data, true);
}

EXPORTED void *lp_shadow_get_or_alloc(void *obj, unsigned long id, size_t size,
				      lp_shadow_ctor_t ctor, void *ctor_data)
{
	void *data;

	if (refused("get_or_alloc"))
		return NULL;
	/* Mostly it exists already: find it without the write lock or a calloc(). */
	data = lp_shadow_get(obj, id);
	return data ? data : get_or_alloc(obj, id, size, ctor, ctor_data, false);
}

/* After it left the table. */
static void destroy(struct shadow *v, lp_shadow_dtor_t dtor)
{
	if (dtor)
		dtor(v->obj, v->data);
	free(v);
}

EXPORTED void lp_shadow_free(void *obj, unsigned long id, lp_shadow_dtor_t dtor)
{
	uint64_t h = hash_key(obj, id);
	struct stripe *s = stripe_of(h);
	struct shadow **pp, *v = NULL;

	if (refused("free"))
		return;
	pthread_rwlock_wrlock(&s->lock);
	pp = find(s, h, obj, id);
	if (pp) {
		v = *pp;
		*pp = v->next;
		s->count--;
	}
	pthread_rwlock_unlock(&s->lock);
	if (v)
		destroy(v, dtor);
}

EXPORTED void lp_shadow_free_all(unsigned long id, lp_shadow_dtor_t dtor)
{
	if (refused("free_all"))
		return;
	for (size_t i = 0; i < NSTRIPES; i++) {
		struct stripe *s = &stripes[i];
		struct shadow *gone = NULL, *v;

		pthread_rwlock_wrlock(&s->lock);
		for (size_t b = 0; s->buckets && b <= s->mask; b++) {
			struct shadow **pp = &s->buckets[b];

			while ((v = *pp)) {
				if (v->id != id) {
					pp = &v->next;
					continue;
				}
				*pp = v->next;
				s->count--;
				v->next = gone;
				gone = v;
			}
		}
		pthread_rwlock_unlock(&s->lock);
		for (; gone; gone = v) {
			v = gone->next;
			destroy(gone, dtor);
		}
	}
}

/* No stripe may be half changed when a child is copied. */
void lp_shadow_atfork_prepare(void)
{
	for (size_t i = 0; i < NSTRIPES; i++)
		pthread_rwlock_wrlock(&stripes[i].lock);
}

void lp_shadow_atfork_parent(void)
{
	for (size_t i = 0; i < NSTRIPES; i++)
		pthread_rwlock_unlock(&stripes[i].lock);
}

/* The child's only thread has a new tid, not the writer's: start the locks afresh. */
void lp_shadow_atfork_child(void)
{
	pthread_rwlockattr_t attr;

	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	for (size_t i = 0; i < NSTRIPES; i++)
		pthread_rwlock_init(&stripes[i].lock, &attr);
	pthread_rwlockattr_destroy(&attr);
}
