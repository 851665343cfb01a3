// SPDX-License-Identifier: MIT
/*
 * Trampoline memory.  A redirected function jumps with a rel32 to its
 * stubs, so they must lie within +-2 GiB of it; we stay within 1 GiB so
 * that the RIP-relative operands of relocated prologues still reach the
 * data they address.  Memory comes in chunks of one code page (read and
 * execute; written only through the text writer) and one page of slots
 * (the pointers the stubs jump through, changed at run time).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime.h"

#define PAGE	     4096ul
#define REACH	     (1ul << 30)
#define PER_CHUNK    (PAGE / LP_TRAMP_CODE_SIZE)
#define LOWEST_ADDR  0x100000ul
#define HIGHEST_ADDR 0x7ffffffff000ul

struct chunk {
	struct chunk *_Atomic next;
	uintptr_t base; /* code page; the slot page follows */
	unsigned used;
};

/* Only ever grows, at its head: lp_tramp_contains() reads it without a lock. */
static struct chunk *_Atomic chunks;

static uintptr_t distance(uintptr_t a, uintptr_t b)
{
	return a > b ? a - b : b - a;
}

/* The free address for @size bytes closest to @near, or 0. */
static uintptr_t free_spot_near(uintptr_t near, size_t size)
{
	FILE *f = fopen("/proc/thread-self/maps", "re");
	uintptr_t prev_end = LOWEST_ADDR, best = 0;
	unsigned long lo, hi;
	char line[512];
	bool last = false;

	if (!f)
		return 0;
	while (!last) {
		uintptr_t gap_lo = prev_end, gap_hi;

		if (fgets(line, sizeof(line), f) && sscanf(line, "%lx-%lx", &lo, &hi) == 2) {
			gap_hi = lo;
		} else {
			gap_hi = HIGHEST_ADDR;
			last = true;
		}
		if (gap_hi > gap_lo && gap_hi - gap_lo >= size + 2 * PAGE) {
			/* Keep a guard page from the neighbours on both sides. */
			uintptr_t first = gap_lo + PAGE, final = gap_hi - PAGE - size, spot;

			spot = near < first ? first : near > final ? final : near & ~(PAGE - 1);
			if (!best || distance(spot, near) < distance(best, near))
				best = spot;
		}
		if (!last && hi > prev_end)
			prev_end = hi;
	}
	fclose(f);
	return best && distance(best, near) < REACH ? best : 0;
}

static struct chunk *chunk_new(uintptr_t near, char *err, size_t errlen)
{
	for (int attempt = 0; attempt < 8; attempt++) {
		uintptr_t spot = free_spot_near(near, 2 * PAGE);
		struct chunk *c;
		void *p;

		if (!spot)
			break;
		p = mmap((void *)spot, 2 * PAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (p == MAP_FAILED && errno == EEXIST)
			continue; /* someone mapped it first: look again */
		if (p == MAP_FAILED)
			break;
		if (mprotect(p, PAGE, PROT_READ | PROT_EXEC) < 0 || !(c = calloc(1, sizeof(*c)))) {
			munmap(p, 2 * PAGE);
			break;
		}
		c->base = (uintptr_t)p;
		c->next = atomic_load(&chunks);
		atomic_store(&chunks, c);
		return c;
	}
	snprintf(err, errlen, "no room for a trampoline within 1 GiB of %#lx", (unsigned long)near);
	return NULL;
}

/* Stubs given back, for the next function near them (under lp_mutex). */
struct free_stub {
	struct free_stub *next;
	uintptr_t code;
	uintptr_t *slots;
};
static struct free_stub *free_stubs;

static bool reuse(uintptr_t near, uintptr_t *code, uintptr_t **slots)
{
	for (struct free_stub **p = &free_stubs; *p; p = &(*p)->next) {
		struct free_stub *f = *p;

		if (distance(f->code, near) >= REACH)
			continue;
		*code = f->code;
		*slots = f->slots;
		*p = f->next;
		free(f);
		return true;
	}
	return false;
}

/*
 * Memory for the stubs of one function near @near: LP_TRAMP_CODE_SIZE bytes
 * of code at *code and LP_TRAMP_SLOTS pointer slots at *slots.  A thread may
 * still be running in the stubs of a function that is no longer patched, so
 * an lp_ops keeps its trampoline while its function exists, and is reused
 * when the same function is patched again.
 */
int lp_tramp_alloc(uintptr_t near, uintptr_t *code, uintptr_t **slots, char *err, size_t errlen)
{
	struct chunk *c;

	if (reuse(near, code, slots))
		return 0;
	for (c = atomic_load(&chunks); c; c = c->next)
		if (c->used < PER_CHUNK && distance(c->base, near) < REACH)
			break;
	if (!c && !(c = chunk_new(near, err, errlen)))
		return -1;
	*code = c->base + c->used * LP_TRAMP_CODE_SIZE;
	*slots = (uintptr_t *)(c->base + PAGE) + c->used * LP_TRAMP_SLOTS;
	c->used++;
	return 0;
}

/*
 * Give back the stubs of a function that is gone (its library unmapped):
 * no way into them is left.  Out of memory they stay unused, that is all.
 */
void lp_tramp_free(uintptr_t code, uintptr_t *slots)
{
	struct free_stub *f = malloc(sizeof(*f));

	if (!f)
		return;
	*f = (struct free_stub){.next = free_stubs, .code = code, .slots = slots};
	free_stubs = f;
}

/*
 * Whether @addr lies in trampoline code: a thread there is between a
 * function's entry and its implementation.  Async-signal-safe.
 */
bool lp_tramp_contains(uintptr_t addr)
{
	for (struct chunk *c = atomic_load(&chunks); c; c = c->next)
		if (addr >= c->base && addr < c->base + PAGE)
			return true;
	return false;
}
