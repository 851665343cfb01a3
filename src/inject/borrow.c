// SPDX-License-Identifier: MIT
/*
 * The borrowed thread: stopped at a safe point (stack.c), it is made to
 * call three functions of libc and is then put back exactly as it was.
 *
 * Each call is set up in the registers: the arguments, the function in
 * rip, and a stack pointer below the thread's red zone (the 128 bytes
 * under rsp that its code may be using are never touched), where the
 * runtime's path and a return address of 0 are written.  The function
 * returns to 0, faults, and the fault stops the thread for us before any
 * handler sees it; the result is in rax.  The calls are
 * __errno_location() (the thread's errno is put back afterwards),
 * dlopen(runtime, RTLD_NOW | RTLD_GLOBAL) and, when that fails, dlerror().
 *
 * Meanwhile every signal that can be blocked is, but the synchronous
 * ones (a blocked fault resets the application's handler to the default):
 * no handler of the application runs on top of the loader, a pending
 * cancellation waits, and a nanosleep() the thread was in can still be
 * restarted (a handler's sigreturn would make it fail with EINTR).  Then
 * its registers (all of them, the FPU and vector state too), its signal
 * mask and errno are put back, orig_rax with them: a system call it was
 * blocked in is restarted by the kernel exactly as after any stop (or here,
 * for a plain EINTR: tracee.c).
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>

#include "inject/internal.h"

#define RED_ZONE    128
#define XSTATE_MAX  (32 * 1024)
#define EFLAGS_TF   0x100
#define EFLAGS_DF   0x400
#define DLERROR_MAX 400
#define PATH_GAP    64

/* Everything of the thread that the calls may change. */
struct saved {
	struct user_regs_struct regs; /* to put back: with a plain EINTR turned into a restart */
	uint8_t xstate[XSTATE_MAX];
	struct iovec xiov;
	uint64_t sigmask;
	bool have_xstate, have_mask;
	uintptr_t errno_addr;
	int errno_value;
};

static struct saved saved;

static int save(struct lp_tracee *t, char *err, size_t errlen)
{
	saved.regs = t->regs;
	lp_tracee_restart_eintr(t, &saved.regs);
	saved.xiov = (struct iovec){saved.xstate, sizeof(saved.xstate)};
	saved.have_xstate = ptrace(PTRACE_GETREGSET, t->tid, NT_X86_XSTATE, &saved.xiov) == 0;
	if (!saved.have_xstate) {
		lp_set_err(err, errlen, "cannot read the vector registers of thread %d: %s",
			   (int)t->tid, strerror(errno));
		return -1;
	}
	saved.have_mask =
	    ptrace(PTRACE_GETSIGMASK, t->tid, sizeof(saved.sigmask), &saved.sigmask) == 0;
	if (!saved.have_mask) {
		lp_set_err(err, errlen, "cannot read the signal mask of thread %d: %s", (int)t->tid,
			   strerror(errno));
		return -1;
	}
	saved.errno_addr = 0;
	return 0;
}

/* Every signal blocked but the synchronous ones. */
static int block_signals(struct lp_tracee *t)
{
	static const int sync[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS};
	uint64_t mask = ~0ull;

	for (size_t i = 0; i < sizeof(sync) / sizeof(sync[0]); i++)
		mask &= ~(1ull << (sync[i] - 1));
	return (int)ptrace(PTRACE_SETSIGMASK, t->tid, sizeof(mask), &mask);
}

/* Put everything back; the thread stays stopped until it is released. */
static int restore(struct lp_tracee *t)
{
	int ret = 0;

	if (saved.errno_addr && lp_mem_write(t->mem, saved.errno_addr, &saved.errno_value,
					     sizeof(saved.errno_value)) < 0)
		ret = -1;
	if (saved.have_mask &&
	    ptrace(PTRACE_SETSIGMASK, t->tid, sizeof(saved.sigmask), &saved.sigmask) < 0)
		ret = -1;
	if (saved.have_xstate && ptrace(PTRACE_SETREGSET, t->tid, NT_X86_XSTATE, &saved.xiov) < 0)
		ret = -1;
	return ret;
}

static bool process_gone(pid_t pid)
{
	char path[32];

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	return access(path, F_OK) < 0 || lp_proc_state(pid, pid) == 'Z';
}

static int ended(const struct lp_tracee *t, const char *what, char *err, size_t errlen)
{
	if (process_gone(t->pid))
		lp_set_err(err, errlen, "the process exited while %s", what);
	else
		lp_set_err(err, errlen, "thread %d exited while %s", (int)t->tid, what);
	return -1;
}

/*
 * Call @fn(@a0, @a1) in the thread with its stack at @sp (where a return
 * address of 0 is); the result in *@ret.  Returns 0, or -1 when the thread
 * or process went away or the call crashed.
 */
static int call(struct lp_tracee *t, uintptr_t sp, uintptr_t fn, uint64_t a0, uint64_t a1,
		uint64_t *ret, const char *what, char *err, size_t errlen)
{
	struct user_regs_struct r = saved.regs;

	r.rip = fn;
	r.rsp = sp;
	r.rdi = a0;
	r.rsi = a1;
	r.rax = 0;
	r.orig_rax = (unsigned long)-1; /* no system call to restart meanwhile */
	r.eflags &= ~(unsigned long)(EFLAGS_TF | EFLAGS_DF);
	if (lp_tracee_resume(t, &r) < 0)
		return ended(t, what, err, errlen);
	for (;;) {
		if (lp_tracee_wait(t, UINT64_MAX) < 0)
			return ended(t, what, err, errlen);
		if (t->stop == LP_STOP_SIGNAL && t->sig == SIGSEGV && t->regs.rip == 0) {
			t->sig = 0;
			*ret = t->regs.rax;
			return 0;
		}
		if (t->stop == LP_STOP_SIGNAL) {
			lp_set_err(err, errlen, "signal %d at %#llx in thread %d while %s", t->sig,
				   t->regs.rip, (int)t->tid, what);
			t->sig = 0;
			return -1;
		}
		/* A group stop (SIGSTOP): the call goes on; the stop comes after it. */
		if (lp_tracee_resume(t, NULL) < 0)
			return ended(t, what, err, errlen);
	}
}

/* Read the C string at @addr of the process into @buf. */
static void read_string(int mem, uintptr_t addr, char *buf, size_t size)
{
	ssize_t n = addr ? pread(mem, buf, size - 1, (off_t)addr) : -1;

	buf[n > 0 ? n : 0] = '\0';
}

/* Where the calls' stack goes: below the red zone, inside the thread's stack. */
static int lay_out(const struct lp_target *tg, struct lp_tracee *t, const char *runtime,
		   uintptr_t *path, uintptr_t *sp, char *err, size_t errlen)
{
	const struct lp_map *stack = lp_maps_find(&tg->maps, saved.regs.rsp);
	size_t len = strlen(runtime) + 1;
	uint8_t data[PATH_MAX + PATH_GAP + 32] = {0};

	*path = (saved.regs.rsp - RED_ZONE - len) & ~(uintptr_t)15;
	*sp = ((*path - PATH_GAP) & ~(uintptr_t)15) - sizeof(uint64_t);
	if (!stack || *sp < stack->lo || *path + len - *sp > sizeof(data)) {
		lp_set_err(err, errlen, "thread %d has no room on its stack", (int)t->tid);
		return -1;
	}
	/* One write: the return address 0 at sp, the path above it. */
	memcpy(data + (*path - *sp), runtime, len);
	if (lp_mem_write(tg->mem, *sp, data, *path + len - *sp) < 0) {
		lp_set_err(err, errlen, "cannot write to the stack of thread %d: %s", (int)t->tid,
			   strerror(errno));
		return -1;
	}
	return 0;
}

static int load(const struct lp_target *tg, struct lp_tracee *t, const char *runtime, char *err,
		size_t errlen)
{
	uint64_t errno_addr, handle, msg;
	uintptr_t path, sp;
	uint64_t start;
	char text[DLERROR_MAX];

	if (lay_out(tg, t, runtime, &path, &sp, err, errlen) < 0)
		return -1;
	if (block_signals(t) < 0) {
		lp_set_err(err, errlen, "cannot block the signals of thread %d: %s", (int)t->tid,
			   strerror(errno));
		return -1;
	}
	start = lp_now_ns();
	if (call(t, sp, tg->errno_location, 0, 0, &errno_addr, "its errno was read", err, errlen) <
	    0)
		return -1;
	if (lp_mem_read(tg->mem, errno_addr, &saved.errno_value, sizeof(saved.errno_value)) == 0)
		saved.errno_addr = errno_addr;
	if (call(t, sp, tg->dlopen, path, RTLD_NOW | RTLD_GLOBAL, &handle, "it loaded the runtime",
		 err, errlen) < 0)
		return -1;
	t->st->borrowed_ns = lp_now_ns() - start;
	if (handle)
		return 0;
	if (call(t, sp, tg->dlerror, 0, 0, &msg, "it read the loader's error", err, errlen) < 0)
		return -1;
	read_string(tg->mem, msg, text, sizeof(text));
	lp_set_err(err, errlen, "the dynamic loader refused the runtime: %s",
		   text[0] ? text : "no reason given");
	return -1;
}

/*
 * @t is stopped at a safe point: load @runtime through it, then put it
 * back and let it go, whether that worked or not.
 */
int lp_borrow_load(const struct lp_target *tg, struct lp_tracee *t, const char *runtime, char *err,
		   size_t errlen)
{
	int ret = save(t, err, errlen);

	if (ret == 0)
		ret = load(tg, t, runtime, err, errlen);
	if (!t->stopped)
		return ret; /* gone */
	if (restore(t) < 0 && ret == 0) {
		lp_set_err(err, errlen, "cannot restore thread %d: %s", (int)t->tid,
			   strerror(errno));
		ret = -1;
	}
	if (lp_tracee_release(t, &saved.regs) < 0 && ret == 0) {
		lp_set_err(err, errlen, "cannot let thread %d go: %s", (int)t->tid,
			   strerror(errno));
		ret = -1;
	}
	return ret;
}
