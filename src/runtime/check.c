// SPDX-License-Identifier: MIT
/*
 * The agent's checks of the threads that have not switched yet (kernel:
 * klp_try_switch_task() for every task).  All of them are checked in one
 * pass, none is stopped for more than a copy of its own stack:
 *
 *   - a thread blocked in the kernel is read from /proc (pc and sp) and its
 *     stack unwound where it lies; it is not disturbed, and the verdict
 *     only counts if it was still blocked, at the same place, afterwards;
 *   - every other thread gets the visit signal, copies its registers and
 *     stack in the handler and goes on; the copies are unwound afterwards.
 *
 * A thread found clean is switched under a claim of its pending byte, and
 * only if it has not entered forbidden code since its stack was read: the
 * only way in is a dispatch while pending, which either switches the thread
 * (then there is nothing left to do) or counts a failure in lp_task.fails.
 *
 * Unwinding is the reliable one of unwind.c.  When it cannot vouch for a
 * stack, a conservative scan of every word of it may still prove the
 * thread clean (see lp_stack_words_find()); otherwise the thread waits
 * for the next try, as the kernel's "unreliable stack" does.
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include "runtime.h"
#include "unwind.h"

#define SNAPSHOT_TIMEOUT_MS 20
#define SNAPSHOT_STACK	    (256 * 1024)
#define SCAN_CHUNK	    4096
#define QUIESCE_ROUNDS	    100

enum verdict {
	CLEAN,
	BLOCKED,    /* a forbidden function on the stack */
	UNRELIABLE, /* cannot tell */
};

/* One thread to check. */
struct cand {
	pid_t tid;
	struct lp_task *task;
	struct lp_task seen; /* its lp_current when the check began */
	bool from_proc;	     /* blocked in the kernel: checked without a signal */
	struct lp_thread_ctx ctx;
	struct lp_snapshot *snap;
	enum verdict verdict;
	bool gone;	 /* it exited: its entry goes */
	bool unanswered; /* it did not answer the last signal */
	const char *blocking;
	char reason[96];
};

/* What a frame or a stack word is checked against. */
struct judge {
	const struct lp_forbidden *f;
	struct cand *c;
};

/* Built for a transition, dropped after it: it maps the files of the modules. */
static struct lp_unwinder *unwinder;
/* Threads the last pass signalled. */
static size_t signalled;

/* Reads of another thread's memory: it may exit and unmap it meanwhile. */
static bool read_remote(uintptr_t addr, void *buf, size_t len)
{
	struct iovec local = {buf, len}, remote = {(void *)addr, len};

	return process_vm_readv(lp_self_tid(), &local, 1, &remote, 1, 0) == (ssize_t)len;
}

/* A window of a blocked thread's stack: an unwind reads a few words in a row. */
struct live_window {
	uintptr_t lo;
	size_t len;
	uint8_t buf[SCAN_CHUNK];
};

static bool read_live(uintptr_t addr, uint64_t *word, void *arg)
{
	struct live_window *w = arg;
	struct iovec local = {w->buf, sizeof(w->buf)}, remote = {(void *)addr, sizeof(w->buf)};
	if (addr < w->lo || addr + sizeof(*word) > w->lo + w->len) {
		/* A short read at the end of a mapping still helps. */
		ssize_t got = process_vm_readv(lp_self_tid(), &local, 1, &remote, 1, 0);
		if (got < (ssize_t)sizeof(*word)) {
			w->len = 0;
			return read_remote(addr, word, sizeof(*word));
		}
		w->lo = addr;
		w->len = (size_t)got;
	}
	memcpy(word, w->buf + (addr - w->lo), sizeof(*word));
	return true;
}

static bool read_snapshot(uintptr_t addr, uint64_t *word, void *arg)
{
	const struct lp_snapshot *s = arg;

	if (addr < s->stack_lo || addr + sizeof(*word) > s->stack_lo + s->stack_len)
		return false;
	memcpy(word, s->buf + (addr - s->stack_lo), sizeof(*word));
	return true;
}

static int judge_frame(uintptr_t pc, bool exact, void *arg)
{
	struct judge *j = arg;
	/* A return address may be one past a call that ends its function. */
	const struct lp_range *r = lp_forbidden_find(j->f, exact ? pc : pc - 1);

	if (r) {
		j->c->blocking = r->name;
		return BLOCKED;
	}
	if (lp_tramp_contains(pc)) {
		snprintf(j->c->reason, sizeof(j->c->reason), "entering a patched function");
		return UNRELIABLE;
	}
	return CLEAN;
}

static enum verdict unwind(struct cand *c, const struct lp_forbidden *f, const struct lp_regs *regs,
			   lp_mem_read_fn read, void *read_arg)
{
	struct judge j = {f, c};
	char why[80] = "";
	int ret = lp_unwind(unwinder, regs, read, read_arg, judge_frame, &j, why, sizeof(why));

	if (ret == BLOCKED || ret == CLEAN)
		return (enum verdict)ret;
	if (ret < 0)
		snprintf(c->reason, sizeof(c->reason), "stack not reliable: %s", why);
	return UNRELIABLE;
}

/*
 * The conservative scan of stack words copied to @buf: clean proves the
 * thread clean; a forbidden word found makes it blocked on that function.
 */
static bool words_clean(struct cand *c, const struct lp_forbidden *f, const uint8_t *buf,
			size_t len)
{
	const uintptr_t *bad = lp_stack_words_find(f, (const uintptr_t *)buf,
						   (const uintptr_t *)(buf + (len & ~(size_t)7)));
	const struct lp_range *r = bad ? lp_forbidden_find(f, *bad - 1) : NULL;

	if (r) {
		c->verdict = BLOCKED;
		c->blocking = r->name;
	}
	return !bad;
}

/* The conservative scan of a blocked thread's whole stack, read in chunks. */
static bool live_words_clean(struct cand *c, const struct lp_forbidden *f)
{
	uintptr_t at = c->ctx.sp & ~(uintptr_t)7, end = c->seen.stack_hi;
	uint8_t buf[SCAN_CHUNK];

	if (!end || c->ctx.sp < c->seen.stack_lo || c->ctx.sp >= end)
		return false;
	while (at < end) {
		size_t n = end - at < sizeof(buf) ? end - at : sizeof(buf);

		if (!read_remote(at, buf, n) || !words_clean(c, f, buf, n))
			return false;
		at += n;
	}
	return true;
}

/*
 * The instruction the thread will execute next, before anything else: in
 * forbidden code it is blocked there; in a trampoline it is between a
 * function's entry and its implementation.  True when that settles it.
 */
static bool judge_pc(struct cand *c, const struct lp_forbidden *f, uintptr_t pc)
{
	struct judge j = {f, c};

	c->verdict = (enum verdict)judge_frame(pc, true, &j);
	return c->verdict != CLEAN;
}

static void check_blocked(struct cand *c, const struct lp_forbidden *f)
{
	struct lp_regs regs = {.known = 1u << LP_UNWIND_RSP | 1u << LP_UNWIND_RIP};
	static struct live_window window;

	if (judge_pc(c, f, c->ctx.pc))
		return;
	regs.r[LP_UNWIND_RSP] = c->ctx.sp;
	regs.r[LP_UNWIND_RIP] = c->ctx.pc;
	window.len = 0;
	c->verdict = unwind(c, f, &regs, read_live, &window);
	if (c->verdict == UNRELIABLE && live_words_clean(c, f))
		c->verdict = CLEAN;
}

/* ucontext's gregs in the unwinder's (DWARF) numbering. */
static void snapshot_regs(const struct lp_snapshot *s, struct lp_regs *regs)
{
	static const int greg_of[LP_UNWIND_NREGS] = {
	    REG_RAX, REG_RDX, REG_RCX, REG_RBX, REG_RSI, REG_RDI, REG_RBP, REG_RSP, REG_R8,
	    REG_R9,  REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15, REG_RIP,
	};

	for (int i = 0; i < LP_UNWIND_NREGS; i++)
		regs->r[i] = s->gregs[greg_of[i]];
	regs->known = (1u << LP_UNWIND_NREGS) - 1;
}

static void check_snapshot(struct cand *c, const struct lp_forbidden *f)
{
	struct lp_snapshot *s = c->snap;
	struct lp_regs regs;

	if (!s->arrived) {
		c->gone = lp_thread_gone(0, c->tid);
		snprintf(c->reason, sizeof(c->reason), "does not answer signals");
		c->verdict = UNRELIABLE;
		return;
	}
	if (s->task != c->task) {
		snprintf(c->reason, sizeof(c->reason), "not the thread it was");
		c->verdict = UNRELIABLE;
		return;
	}
	snapshot_regs(s, &regs);
	if (judge_pc(c, f, regs.r[LP_UNWIND_RIP]))
		return;
	c->verdict = unwind(c, f, &regs, read_snapshot, s);
	if (c->verdict == UNRELIABLE && s->stack_whole && words_clean(c, f, s->buf, s->stack_len))
		c->verdict = CLEAN;
}

/*
 * Switch a clean thread, unless it ran into forbidden code since its stack
 * was read (lp_task.fails moved) or, for one read from /proc, ran at all.
 */
static bool switch_thread(const struct cand *c, int target)
{
	uint32_t fails_then = c->snap ? c->snap->fails : c->seen.fails;
	uint8_t p = LP_PENDING;
	bool ok;

	if (!atomic_compare_exchange_strong(&c->task->pending, &p, LP_PENDING_AGENT))
		return p == LP_PENDING_NONE;
	ok = atomic_load(&c->task->fails) == fails_then &&
	     (!c->from_proc || lp_thread_still_blocked(&c->ctx));
	if (ok)
		atomic_store(&c->task->state, (uint8_t)target);
	atomic_store(&c->task->pending, ok ? LP_PENDING_NONE : LP_PENDING);
	return ok;
}

static void note_reason(struct lp_thread *t, const struct cand *c)
{
	t->blocking = c->verdict == BLOCKED ? c->blocking : NULL;
	if (c->verdict == BLOCKED)
		snprintf(t->reason, sizeof(t->reason), "sleeping on '%s'", c->blocking);
	else
		snprintf(t->reason, sizeof(t->reason), "%s", c->reason);
}

/*
 * Under lp_threads_lock: threads that need no stack read switch at once
 * (one not running yet, the agent itself), the others become candidates.
 */
static size_t collect(struct cand **out, int target)
{
	struct lp_thread *t;
	struct cand *c;
	size_t n = 0, cap = 0;

	list_for_each_entry (t, &lp_thread_list, node)
		cap++;
	c = calloc(cap ? cap : 1, sizeof(*c));
	*out = c;
	if (!c)
		return 0;
	list_for_each_entry (t, &lp_thread_list, node) {
		if (lp_thread_pending(t) == LP_PENDING_NONE && lp_thread_state(t) == target)
			continue;
		if (!t->task || t->task == &lp_current) {
			/* No stack yet, or ours: nothing patched is on it here. */
			lp_thread_set(t, target, LP_PENDING_NONE);
			continue;
		}
		c[n].tid = t->tid;
		c[n].task = t->task;
		c[n].unanswered = t->unanswered;
		c[n].verdict = UNRELIABLE;
		n++;
	}
	return n;
}

/* Signal the threads that are not blocked (all of them with @signal_all). */
static struct lp_snapshot *take_snapshots(struct cand *c, size_t n, const struct lp_forbidden *f,
					  bool signal_all)
{
	struct lp_snapshot *snaps = calloc(n ? n : 1, sizeof(*snaps));
	char err[LP_ERR_MAX];
	size_t k = 0;

	if (!snaps)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		/* A signal would end a wait that never restarts with EINTR. */
		if (c[i].from_proc && (!signal_all || lp_syscall_interruptible(c[i].ctx.nr)))
			continue;
		/* Real-time signals queue: do not add to one still pending. */
		if (c[i].unanswered &&
		    (lp_thread_sigset(c[i].tid, "SigPnd") & 1ull << (lp_visit_signal() - 1))) {
			snprintf(c[i].reason, sizeof(c[i].reason), "does not answer signals");
			continue;
		}
		c[i].from_proc = false;
		c[i].snap = &snaps[k];
		snaps[k].tid = c[i].tid;
		snaps[k].buf = malloc(SNAPSHOT_STACK);
		snaps[k].bufsize = snaps[k].buf ? SNAPSHOT_STACK : 0;
		k++;
	}
	signalled = k;
	if (k && lp_threads_snapshot(snaps, k, SNAPSHOT_TIMEOUT_MS, err, sizeof(err)) < 0) {
		lp_log("cannot check threads: %s", err);
		for (size_t i = 0; i < n; i++)
			c[i].snap = NULL;
	}
	for (size_t i = 0; i < n; i++)
		if (c[i].snap)
			check_snapshot(&c[i], f);
	return snaps;
}

static void free_snapshots(struct lp_snapshot *snaps, size_t n)
{
	for (size_t i = 0; snaps && i < n; i++)
		free(snaps[i].buf);
	free(snaps);
}

/* Threads blocked in the kernel where they lie, the others from snapshots. */
static struct lp_snapshot *check_all(struct cand *c, size_t n, const struct lp_forbidden *f,
				     bool signal_all)
{
	for (size_t i = 0; i < n; i++) {
		c[i].ctx.tid = c[i].tid;
		if (!read_remote((uintptr_t)c[i].task, &c[i].seen, sizeof(c[i].seen)))
			continue; /* gone */
		c[i].from_proc = lp_thread_read_blocked(&c[i].ctx);
		if (c[i].from_proc && (!signal_all || lp_syscall_interruptible(c[i].ctx.nr)))
			check_blocked(&c[i], f);
	}
	return take_snapshots(c, n, f, signal_all);
}

/*
 * Check every thread not yet switched to @target and switch the clean ones.
 * Returns how many are left.  @signal_all also signals threads blocked in
 * the kernel (kernel: klp_send_signals()), for their full registers.
 */
size_t lp_check_threads(const struct lp_forbidden *f, int target, bool signal_all)
{
	struct lp_snapshot *snaps = NULL;
	struct lp_thread *t;
	struct cand *c;
	size_t n, left = 0;
	char err[LP_ERR_MAX];

	if (!f) {
		lp_log("cannot check threads: out of memory");
		return 1;
	}
	if (!unwinder && !(unwinder = lp_unwinder_new(err, sizeof(err))))
		lp_log("cannot unwind stacks: %s", err);
	else if (lp_unwinder_refresh(unwinder, err, sizeof(err)) < 0)
		lp_log("cannot unwind stacks: %s", err);
	pthread_mutex_lock(&lp_threads_lock);
	n = collect(&c, target);
	pthread_mutex_unlock(&lp_threads_lock);
	if (!c)
		return 1;
	if (unwinder)
		snaps = check_all(c, n, f, signal_all);
	pthread_mutex_lock(&lp_threads_lock);
	for (size_t i = 0; i < n; i++) {
		t = lp_thread_find(c[i].tid, c[i].task);
		if (!t)
			continue; /* exited: it no longer counts */
		if (c[i].gone) {
			lp_thread_forget(t);
			continue;
		}
		t->unanswered = c[i].snap ? !c[i].snap->arrived : c[i].unanswered;
		if (c[i].verdict == CLEAN && switch_thread(&c[i], target)) {
			t->blocking = NULL;
			t->reason[0] = '\0';
		} else if (c[i].verdict != CLEAN) {
			note_reason(t, &c[i]);
		}
	}
	list_for_each_entry (t, &lp_thread_list, node)
		left += lp_thread_pending(t) != LP_PENDING_NONE || lp_thread_state(t) != target;
	pthread_mutex_unlock(&lp_threads_lock);
	free_snapshots(snaps, n);
	free(c);
	return left;
}

/* How many threads the last check signalled. */
size_t lp_check_signalled(void)
{
	return signalled;
}

/*
 * The transition is over.  The unwinder goes too: it keeps the files of
 * the modules mapped, a patch's among them, which must not outlive the
 * patch's unloading.
 */
void lp_check_release(void)
{
	lp_unwinder_free(unwinder);
	unwinder = NULL;
}

/* Threads not blocked in the kernel, with a snapshot each (registers only). */
static size_t running_threads(struct lp_snapshot **out)
{
	struct lp_snapshot *snaps;
	struct lp_thread *t;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&lp_threads_lock);
	list_for_each_entry (t, &lp_thread_list, node)
		cap++;
	snaps = calloc(cap ? cap : 1, sizeof(*snaps));
	list_for_each_entry (t, &lp_thread_list, node) {
		if (snaps && t->task && t->task != &lp_current && !t->unanswered &&
		    !lp_thread_blocked_now(t->tid))
			snaps[n++].tid = t->tid;
	}
	pthread_mutex_unlock(&lp_threads_lock);
	*out = snaps;
	return n;
}

/*
 * Kernel: klp_synchronize_transition().  A thread preempted in a slow stub
 * after it compared its state, before its jump, would dispatch by a state
 * from a transition that is over once the next one sets the slots.  Wait
 * until every running thread is seen outside the trampolines.  Threads
 * that did not answer the signal before are not asked again (they cannot
 * be seen); a thread cannot block in a stub, so the others are fine.
 */
void lp_check_quiesce(void)
{
	char err[LP_ERR_MAX];

	for (int round = 0; round < QUIESCE_ROUNDS; round++) {
		struct lp_snapshot *snaps;
		size_t n = running_threads(&snaps);
		bool inside = false;

		if (n && lp_threads_snapshot(snaps, n, SNAPSHOT_TIMEOUT_MS, err, sizeof(err)) == 0)
			for (size_t i = 0; i < n; i++)
				inside |=
				    snaps[i].arrived && lp_tramp_contains(snaps[i].gregs[REG_RIP]);
		free(snaps);
		if (!inside)
			return;
		sched_yield();
	}
	lp_log("a thread stayed inside a trampoline for %d checks", QUIESCE_ROUNDS);
}
