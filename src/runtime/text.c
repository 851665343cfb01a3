// SPDX-License-Identifier: MIT
/*
 * Writing code that other threads may be running, the way the kernel's
 * text_poke_bp() does it:
 *
 *   1. an int3 over the first byte of the patch site: from now on a thread
 *      arriving at the site traps and is sent to the stubs, which dispatch
 *      exactly as the finished jump will;
 *   2. every thread whose pc lies inside the displaced bytes (it was
 *      preempted in the middle of the old prologue) is moved to the same
 *      instruction in the relocated copy;
 *   3. the rest of the jump; 4. its first byte.
 *
 * Every step is followed by membarrier(SYNC_CORE), so that no core keeps
 * executing stale instructions.  Bytes are written through /proc/self/mem,
 * which needs no change of page protection: the code never becomes
 * writable, not even for a moment.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "runtime.h"

#define INT3 0xcc

static int mem_fd = -1;
static struct sigaction chained_trap;

/*
 * The function whose entry is being written.  One pointer, not a site and a
 * target apart: a handler must never pair one write's site with another's
 * target.  An lp_ops is never freed, and its site and stubs never change.
 */
static const struct lp_ops *_Atomic trapping;

static void forward_trap(int sig, siginfo_t *si, void *uc)
{
	if (chained_trap.sa_flags & SA_SIGINFO) {
		chained_trap.sa_sigaction(sig, si, uc);
	} else if (chained_trap.sa_handler != SIG_DFL && chained_trap.sa_handler != SIG_IGN) {
		chained_trap.sa_handler(sig);
	} else {
		/* Not ours and nobody else's: die the way it would have. */
		signal(SIGTRAP, SIG_DFL);
		raise(SIGTRAP);
	}
}

static void trap_handler(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	uintptr_t ip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP] - 1;
	const struct lp_ops *ops = atomic_load(&trapping);

	if (si->si_code == SI_KERNEL || si->si_code == TRAP_BRKPT) {
		/* The stubs dispatch as the finished write will. */
		if (ops && ip == ops->prologue.site) {
			uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(ops->stubs + ops->off.entry);
			return;
		}
		/* Our int3 came and went before this handler ran: run what is there now. */
		if (*(volatile uint8_t *)ip != INT3) {
			uc->uc_mcontext.gregs[REG_RIP] = (greg_t)ip;
			return;
		}
	}
	forward_trap(sig, si, ucv);
}

/* /proc/self/mem names the memory of the process that opened it. */
static int open_own_memory(void)
{
	mem_fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (mem_fd < 0)
		return -1;
	return (int)syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0,
			    0);
}

int lp_text_init(void)
{
	struct sigaction sa = {.sa_sigaction = trap_handler, .sa_flags = SA_SIGINFO | SA_RESTART};

	if (open_own_memory() < 0)
		return -1;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGTRAP, &sa, &chained_trap);
}

/* A forked child writing through its parent's descriptor would patch the parent. */
int lp_text_atfork_child(void)
{
	close(mem_fd);
	return open_own_memory();
}

int lp_text_write(uintptr_t addr, const void *bytes, size_t len)
{
	ssize_t n = pwrite(mem_fd, bytes, len, (off_t)addr);

	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		errno = EIO;
	return -1;
}

int lp_text_sync(void)
{
	return (int)syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0);
}

static int write_synced(uintptr_t addr, const void *bytes, size_t len)
{
	if (lp_text_write(addr, bytes, len) < 0 || lp_text_sync() < 0)
		return -1;
	return 0;
}

static void arm_trap(const struct lp_ops *ops)
{
	atomic_store(&trapping, ops);
}

/* Step 2: a thread inside the displaced bytes moves to their copy. */
static int move_out_of_prologue(struct lp_thread_ctx *ctx, void *arg)
{
	const struct lp_ops *ops = arg;
	const struct lp_prologue *p = &ops->prologue;
	ucontext_t *uc = ctx->ucontext;

	if (ctx->pc <= p->site || ctx->pc >= p->site + p->len)
		return 0;
	if (!uc)
		return 1;
	for (size_t i = 0; i < p->ninsns; i++) {
		if (ctx->pc == p->site + p->insn_off[i]) {
			uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(ops->orig + ops->insn_map[i]);
			return 0;
		}
	}
	/* Not on an instruction boundary: the analysis was wrong, stop. */
	return -1;
}

static int install_jump(struct lp_ops *ops, char *err, size_t errlen)
{
	const struct lp_prologue *p = &ops->prologue;
	uintptr_t entry = ops->stubs + ops->off.entry;
	uint8_t jmp[LP_JMP_SIZE], int3 = INT3;

	if (lp_arch_encode_jmp(jmp, p->site, entry) < 0) {
		snprintf(err, errlen, "trampoline out of reach of %#lx", (unsigned long)p->site);
		return -1;
	}
	arm_trap(ops);
	if (write_synced(p->site, &int3, 1) < 0) {
		snprintf(err, errlen, "cannot write code at %#lx: %s", (unsigned long)p->site,
			 strerror(errno));
		arm_trap(NULL);
		return -1;
	}
	if (lp_threads_visit(move_out_of_prologue, p->site + 1, p->site + p->len, ops, false, err,
			     errlen) < 0) {
		if (!err[0])
			snprintf(err, errlen,
				 "a thread is stopped inside the prologue of %#lx "
				 "but not at an instruction boundary",
				 (unsigned long)p->func);
		write_synced(p->site, p->orig, 1);
		arm_trap(NULL);
		return -1;
	}
	if (write_synced(p->site + 1, jmp + 1, LP_JMP_SIZE - 1) < 0 ||
	    write_synced(p->site, jmp, 1) < 0) {
		snprintf(err, errlen, "cannot write code at %#lx: %s", (unsigned long)p->site,
			 strerror(errno));
		write_synced(p->site, &int3, 1);
		write_synced(p->site + 1, p->orig + 1, LP_JMP_SIZE - 1);
		write_synced(p->site, p->orig, 1);
		arm_trap(NULL);
		return -1;
	}
	arm_trap(NULL);
	ops->installed = true;
	return 0;
}

/* Threads that block SIGTRAP are stopped meanwhile (stopper.c). */
int lp_text_install_jump(struct lp_ops *ops, char *err, size_t errlen)
{
	struct lp_stopper *stopped;
	int ret;

	if (lp_stop_trap_blockers(ops, &stopped, err, errlen) < 0)
		return -1;
	ret = install_jump(ops, err, errlen);
	lp_stopper_release(stopped);
	return ret;
}

/*
 * No thread can be inside a jump instruction, so going back needs no
 * visit; threads trapping meanwhile go through the stubs, whose slots
 * already lead to the original code.  When the threads that block SIGTRAP
 * cannot be stopped the jump stays: it leads to the original code anyway.
 */
void lp_text_remove_jump(struct lp_ops *ops)
{
	const struct lp_prologue *p = &ops->prologue;
	struct lp_stopper *stopped;
	char err[LP_ERR_MAX];
	uint8_t int3 = INT3;

	if (lp_stop_trap_blockers(NULL, &stopped, err, sizeof(err)) < 0) {
		lp_log("%s; the entry of %#lx keeps its jump", err, (unsigned long)p->func);
		return;
	}
	arm_trap(ops);
	write_synced(p->site, &int3, 1);
	write_synced(p->site + 1, p->orig + 1, LP_JMP_SIZE - 1);
	write_synced(p->site, p->orig, 1);
	arm_trap(NULL);
	lp_stopper_release(stopped);
	ops->installed = false;
}

/*
 * The entry jump of a function no thread can be running: its library is
 * mapped but not started yet (coming), or its destructors ran and it is
 * about to be unmapped (going).  Plain writes, then one serialisation.
 */
int lp_text_set_jump_idle(struct lp_ops *ops, bool install, char *err, size_t errlen)
{
	const struct lp_prologue *p = &ops->prologue;
	uint8_t jmp[LP_JMP_SIZE];

	if (install && lp_arch_encode_jmp(jmp, p->site, ops->stubs + ops->off.entry) < 0) {
		snprintf(err, errlen, "trampoline out of reach of %#lx", (unsigned long)p->site);
		return -1;
	}
	if (write_synced(p->site, install ? jmp : p->orig, LP_JMP_SIZE) < 0) {
		snprintf(err, errlen, "cannot write code at %#lx: %s", (unsigned long)p->site,
			 strerror(errno));
		return -1;
	}
	ops->installed = install;
	return 0;
}
