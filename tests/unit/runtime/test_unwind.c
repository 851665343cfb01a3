// SPDX-License-Identifier: MIT
/*
 * Unit tests of src/runtime/unwind.c on the threads of this process: a
 * thread parked in a known call chain unwound from a signal's full
 * register context and from the pc and sp of /proc/self/task/TID/syscall,
 * a thread inside a signal handler, frames that need a register that is
 * not known, corrupt stacks, failing reads and code in anonymous memory.
 * Expected frames come from dladdr1() on the functions of this file
 * (exported with -rdynamic), never from the unwinder's own module list.
 */
#ifdef LP_TEST_DEBUG_FRAME_ONLY
/* This file again, without .eh_frame: only this function. */
int f3(int fd);

__attribute__((noipa)) int dbg_frame_only(int fd)
{
	return f3(fd) + 5;
}
#else
#include "runtime/unwind.h"
#include "../check.h"

#include <alloca.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define MAX_FRAMES (LP_UNWIND_MAX_FRAMES + 8)
#define ALL_REGS   ((1u << LP_UNWIND_NREGS) - 1)
#define PC_SP_ONLY ((1u << LP_UNWIND_RSP) | (1u << LP_UNWIND_RIP))

#define NOINLINE __attribute__((noipa, used))

/* The reason of an unreliable unwind says @text. */
#define CHECK_WHY(why, text)                                                                       \
	do {                                                                                       \
		if (!strstr(why, text)) {                                                          \
			fprintf(stderr, "%s:%d: reason \"%s\" does not say \"%s\"\n", __FILE__,    \
				__LINE__, why, text);                                              \
			check_failures++;                                                          \
		}                                                                                  \
	} while (0)

/*
 * The threads block in read() on a pipe.  Under AddressSanitizer read() is
 * its interceptor, built with frame pointers: its CFA is rbp-based, so an
 * unwind from pc and sp alone is (rightly) unreliable there.  The raw
 * syscall keeps the tests' chains the same in both builds.
 */
#ifdef __SANITIZE_ADDRESS__
#include <sys/syscall.h>
#define blocking_read(fd, buf, n) syscall(SYS_read, fd, buf, n)
#else
#define blocking_read(fd, buf, n) read(fd, buf, n)
#endif

struct frames {
	uintptr_t pc[MAX_FRAMES];
	bool exact[MAX_FRAMES];
	int n;
	int stop_at; /* return stop_ret at this frame (0-based), or -1 */
	int stop_ret;
};

static int collect(uintptr_t pc, bool exact, void *arg)
{
	struct frames *f = arg;

	if (f->n < MAX_FRAMES) {
		f->pc[f->n] = pc;
		f->exact[f->n] = exact;
	}
	if (f->n++ == f->stop_at)
		return f->stop_ret;
	return 0;
}

static int ignore_frame(uintptr_t pc, bool exact, void *arg)
{
	(void)pc;
	(void)exact;
	(void)arg;
	return 0;
}

/* Stack reads the way the runtime does them: never a plain dereference. */
static bool vm_read(uintptr_t addr, uint64_t *word, void *arg)
{
	struct iovec local = {word, sizeof(*word)}, remote = {(void *)addr, sizeof(*word)};

	return process_vm_readv(*(pid_t *)arg, &local, 1, &remote, 1, 0) == sizeof(*word);
}

static bool fail_read(uintptr_t addr, uint64_t *word, void *arg)
{
	(void)addr;
	(void)word;
	(void)arg;
	return false;
}

static pid_t self_pid;

static int unwind(struct lp_unwinder *u, const struct lp_regs *regs, struct frames *f, char *why,
		  size_t whylen)
{
	f->n = 0;
	return lp_unwind(u, regs, vm_read, &self_pid, collect, f, why, whylen);
}

/* Is @pc (a return address unless @exact) inside function @fn? */
static bool in_func(uintptr_t pc, bool exact, void *fn)
{
	const ElfW(Sym) *sym = NULL;
	Dl_info info;

	if (!dladdr1((void *)(exact ? pc : pc - 1), &info, (void **)&sym, RTLD_DL_SYMENT) || !sym)
		return false;
	return info.dli_saddr == fn;
}

/* Index of the first frame at or after @from inside @fn, or -1. */
static int find_frame(const struct frames *f, int from, void *fn)
{
	int i;

	for (i = from < 0 ? 0 : from; i < f->n && i < MAX_FRAMES; i++)
		if (in_func(f->pc[i], f->exact[i], fn))
			return i;
	return -1;
}

static void print_frames(const char *what, const struct frames *f)
{
	int i;

	fprintf(stderr, "%s: %d frames\n", what, f->n);
	for (i = 0; i < f->n && i < MAX_FRAMES; i++) {
		Dl_info info = {0};

		dladdr((void *)(f->exact[i] ? f->pc[i] : f->pc[i] - 1), &info);
		fprintf(stderr, "  #%d %#lx%s %s\n", i, (unsigned long)f->pc[i],
			f->exact[i] ? " (exact)" : "", info.dli_sname ? info.dli_sname : "?");
	}
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Waits until thread @tid is blocked in read(@fd, ...); gives its sp and pc. */
static bool wait_in_read(pid_t tid, int fd, struct lp_regs *regs)
{
	unsigned long nr, a[6], sp, pc;
	char path[64], line[256];
	int tries;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	for (tries = 0; tries < 5000; tries++) {
		FILE *f = fopen(path, "re");
		bool ok = false;

		if (f && fgets(line, sizeof(line), f))
			ok = sscanf(line, "%lu %lx %lx %lx %lx %lx %lx %lx %lx", &nr, &a[0], &a[1],
				    &a[2], &a[3], &a[4], &a[5], &sp, &pc) == 9 &&
			     nr == 0 && a[0] == (unsigned long)fd;
		if (f)
			fclose(f);
		if (ok) {
			memset(regs, 0, sizeof(*regs));
			regs->r[LP_UNWIND_RSP] = sp;
			regs->r[LP_UNWIND_RIP] = pc;
			regs->known = PC_SP_ONLY;
			return true;
		}
		usleep(1000);
	}
	return false;
}

/*
 * A signal handler that publishes the interrupted register context and
 * then waits, so that the interrupted frames stay put while they are
 * unwound.
 */
static int capture_pipe[2];
static struct lp_regs captured;
static atomic_int captured_ready;

static const int dwarf_to_greg[LP_UNWIND_NREGS] = {
    REG_RAX, REG_RDX, REG_RCX, REG_RBX, REG_RSI, REG_RDI, REG_RBP, REG_RSP, REG_R8,
    REG_R9,  REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15, REG_RIP,
};

static void capture_handler(int sig, siginfo_t *si, void *ctx)
{
	const ucontext_t *uc = ctx;
	char c;
	int n;

	(void)sig;
	(void)si;
	for (n = 0; n < LP_UNWIND_NREGS; n++)
		captured.r[n] = uc->uc_mcontext.gregs[dwarf_to_greg[n]];
	captured.known = ALL_REGS;
	atomic_store(&captured_ready, 1);
	while (read(capture_pipe[0], &c, 1) < 0 && errno == EINTR)
		;
}

/* Sends the capture signal to @t and waits for the context. */
static bool capture(pthread_t t, struct lp_regs *regs)
{
	int tries;

	atomic_store(&captured_ready, 0);
	if (pthread_kill(t, SIGUSR1))
		return false;
	for (tries = 0; tries < 5000 && !atomic_load(&captured_ready); tries++)
		usleep(1000);
	*regs = captured;
	return atomic_load(&captured_ready);
}

static void release_capture(void)
{
	CHECK_EQ(write(capture_pipe[1], "x", 1), 1);
}

/* 1: a thread parked in f1 -> f2 -> f3 -> read(). */
static int park_pipe[2];
static atomic_int park_tid;

NOINLINE int f3(int fd)
{
	char c;

	return (int)blocking_read(fd, &c, 1) + 1;
}

NOINLINE int f2(int fd)
{
	return f3(fd) + 2;
}

NOINLINE int f1(int fd)
{
	return f2(fd) + 3;
}

NOINLINE void *park_main(void *arg)
{
	(void)arg;
	atomic_store(&park_tid, gettid());
	/* Each byte written returns once; EOF (f3 gives 1) ends the thread. */
	while (f1(park_pipe[0]) != 6)
		;
	return NULL;
}

/* The return addresses of f3, f2 and f1 in this order, right after the innermost frame. */
static void check_chain(const char *what, const struct frames *f)
{
	int i3 = find_frame(f, 1, (void *)f3), i2 = find_frame(f, 1, (void *)f2);
	int i1 = find_frame(f, 1, (void *)f1);

	CHECK(f->n >= 4);
	CHECK(f->exact[0]);
	CHECK(!in_func(f->pc[0], true, (void *)f3)); /* inside read() */
	CHECK_EQ(i3, 1);
	CHECK_EQ(i2, 2);
	CHECK_EQ(i1, 3);
	CHECK(find_frame(f, 0, (void *)park_main) > i1);
	for (int i = 1; i < f->n && i < MAX_FRAMES; i++)
		CHECK(!f->exact[i]);
	if (check_failures)
		print_frames(what, f);
}

/*
 * Reads a page at a time and keeps the last few, the way a runtime would
 * serve a whole unwind from a couple of process_vm_readv() calls.
 */
struct page_reader {
	uintptr_t base[4];
	uint64_t data[4][512];
	int n, next, syscalls;
};

static bool page_read(uintptr_t addr, uint64_t *word, void *arg)
{
	struct page_reader *r = arg;
	uintptr_t base = addr & ~4095ul;
	struct iovec local, remote = {(void *)base, 4096};
	int i;

	if ((addr & 7) || base != ((addr + 7) & ~4095ul))
		return vm_read(addr, word, &self_pid);
	for (i = 0; i < r->n; i++)
		if (r->base[i] == base)
			goto hit;
	i = r->next;
	r->next = (r->next + 1) % 4;
	if (r->n < 4)
		r->n++;
	local = (struct iovec){r->data[i], 4096};
	r->syscalls++;
	if (process_vm_readv(self_pid, &local, 1, &remote, 1, 0) != 4096) {
		r->base[i] = 0;
		return false;
	}
	r->base[i] = base;
hit:
	*word = r->data[i][(addr - base) / 8];
	return true;
}

static bool count_read(uintptr_t addr, uint64_t *word, void *arg)
{
	++*(int *)arg;
	return vm_read(addr, word, &self_pid);
}

/* Best of a few rounds: the machine may be busy with other work. */
static void bench(const char *what, struct lp_unwinder *u, const struct lp_regs *regs)
{
	static struct page_reader pr;
	static struct frames f = {.stop_at = -1};
	double t, word = 1e9, page = 1e9;
	int i, round, bad = 0, reads = 0;
	const int n = 200;

	f.n = 0;
	CHECK_EQ(lp_unwind(u, regs, count_read, &reads, collect, &f, NULL, 0), 0);
	for (round = 0; round < 10; round++) {
		t = now();
		for (i = 0; i < n; i++)
			bad += lp_unwind(u, regs, vm_read, &self_pid, ignore_frame, NULL, NULL,
					 0) != 0;
		t = (now() - t) / n;
		word = t < word ? t : word;
		pr.syscalls = 0;
		t = now();
		for (i = 0; i < n; i++) {
			pr.n = pr.next = 0;
			bad += lp_unwind(u, regs, page_read, &pr, ignore_frame, NULL, NULL, 0) != 0;
		}
		t = (now() - t) / n;
		page = t < page ? t : page;
	}
	CHECK_EQ(bad, 0);
	printf("unwind %s, %d frames: %.2f us reading word by word (%d reads), "
	       "%.2f us reading page by page (%d process_vm_readv)\n",
	       what, f.n, word * 1e6, reads, page * 1e6, pr.syscalls / n);
}

static void test_parked(struct lp_unwinder *u, struct lp_regs *pc_sp)
{
	struct frames full = {.stop_at = -1}, part = {.stop_at = -1}, stop = {.stop_at = 1};
	struct lp_regs regs;
	char why[256];
	pthread_t t;
	int i;

	CHECK_EQ(pipe(park_pipe), 0);
	CHECK_EQ(pthread_create(&t, NULL, park_main, NULL), 0);
	while (!atomic_load(&park_tid))
		usleep(1000);
	CHECK(wait_in_read(atomic_load(&park_tid), park_pipe[0], &regs));

	/* (a) the full context, from a signal handler that waits meanwhile. */
	CHECK(capture(t, &regs));
	why[0] = 0;
	CHECK_EQ(unwind(u, &regs, &full, why, sizeof(why)), 0);
	if (why[0])
		fprintf(stderr, "full context: %s\n", why);
	check_chain("full context", &full);
	bench("full context (parked thread)", u, &regs);

	/* 2: a frame callback's non-zero result stops the walk and is returned. */
	stop.stop_ret = 7;
	CHECK_EQ(lp_unwind(u, &regs, vm_read, &self_pid, collect, &stop, why, sizeof(why)), 7);
	CHECK_EQ(stop.n, 2);
	release_capture();

	/* (b) pc and sp only, the thread blocked in read() outside any handler. */
	CHECK(wait_in_read(atomic_load(&park_tid), park_pipe[0], &regs));
	why[0] = 0;
	CHECK_EQ(unwind(u, &regs, &part, why, sizeof(why)), 0);
	if (why[0])
		fprintf(stderr, "pc and sp: %s\n", why);
	check_chain("pc and sp", &part);
	/* Same return addresses as from the full context. */
	CHECK_EQ(part.n, full.n);
	for (i = 1; i < part.n && i < full.n && i < MAX_FRAMES; i++)
		CHECK_EQ(part.pc[i], full.pc[i]);
	bench("pc and sp (parked thread)", u, &regs);

	/* No frame callback: only the verdict. */
	CHECK_EQ(lp_unwind(u, &regs, vm_read, &self_pid, NULL, NULL, why, sizeof(why)), 0);

	/* 3b: a read callback that always fails. */
	why[0] = 0;
	CHECK_EQ(lp_unwind(u, &regs, fail_read, NULL, ignore_frame, NULL, why, sizeof(why)), -1);
	CHECK_WHY(why, "cannot read the stack at");

	/* rsp and rip are required. */
	regs.known = 1u << LP_UNWIND_RIP;
	CHECK_EQ(lp_unwind(u, &regs, vm_read, &self_pid, ignore_frame, NULL, why, sizeof(why)), -1);
	regs.known = PC_SP_ONLY;
	*pc_sp = regs;

	/* Stop the thread when the tests are done with it. */
	pthread_detach(t);
}

/* 3: garbage stacks never crash and are never reported as complete by mistake. */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static void test_corrupt(struct lp_unwinder *u, const struct lp_regs *good)
{
	const size_t nwords = 8192;
	uint64_t *buf = malloc(nwords * sizeof(*buf));
	void *code[] = {(void *)f1,	   (void *)f2,	 (void *)f3,
			(void *)park_main, (void *)read, (void *)pthread_create};
	struct frames f = {.stop_at = -1};
	int i, rc, complete = 0, unreliable = 0, other = 0;
	struct lp_regs regs;
	char why[256];
	void *page;

	CHECK(buf != NULL);
	if (!buf)
		return;
	for (i = 0; i < 2000; i++) {
		size_t w;

		for (w = 0; w < nwords; w++) {
			uint64_t r = rnd();

			/* Half the runs mix in plausible words: code and stack addresses. */
			if (i % 2 && r % 4 == 0)
				r = (uint64_t)code[r / 4 % 6] + r / 64 % 256;
			else if (i % 2 && r % 4 == 1)
				r = (uint64_t)&buf[r / 4 % nwords];
			buf[w] = r;
		}
		memset(&regs, 0, sizeof(regs));
		regs.r[LP_UNWIND_RSP] = (uint64_t)&buf[rnd() % (nwords / 2)];
		regs.r[LP_UNWIND_RIP] = (uint64_t)code[i % 3] + rnd() % 16;
		regs.r[LP_UNWIND_RBP] = buf[rnd() % nwords];
		regs.known = i % 4 < 2 ? PC_SP_ONLY : ALL_REGS;
		rc = unwind(u, &regs, &f, why, sizeof(why));
		if (rc == 0)
			complete++;
		else if (rc == -1)
			unreliable++;
		else
			other++;
	}
	printf("corrupt stacks: %d unreliable, %d complete\n", unreliable, complete);
	CHECK_EQ(other, 0);
	/* Nothing in the garbage ends in _start or clone3's CFI. */
	CHECK_EQ(complete, 0);
	free(buf);

	/* A stack pointer into unmapped memory. */
	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(page != MAP_FAILED);
	munmap(page, 4096);
	regs = *good;
	regs.r[LP_UNWIND_RSP] = (uint64_t)page + 2048;
	why[0] = 0;
	CHECK_EQ(unwind(u, &regs, &f, why, sizeof(why)), -1);
	CHECK_WHY(why, "cannot read the stack at");
}

/* 4: code in anonymous executable memory (JIT, trampolines). */
static void test_anon(struct lp_unwinder *u, const struct lp_regs *good)
{
	struct frames f = {.stop_at = -1};
	uint64_t stack[4];
	struct lp_regs regs;
	char why[256];
	uint8_t *page;

	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(page != MAP_FAILED);
	if (page == MAP_FAILED)
		return;
	page[0] = 0xc3; /* ret */
	CHECK_EQ(mprotect(page, 4096, PROT_READ | PROT_EXEC), 0);

	/* Innermost pc there, above a real stack. */
	regs = *good;
	regs.r[LP_UNWIND_RIP] = (uint64_t)page;
	why[0] = 0;
	CHECK_EQ(unwind(u, &regs, &f, why, sizeof(why)), -1);
	CHECK_EQ(f.n, 0);
	CHECK_WHY(why, "not in a known module");

	/* A return address there: f3 at its first instruction was called from the page. */
	stack[0] = (uint64_t)page + 1;
	stack[1] = stack[2] = stack[3] = 0;
	memset(&regs, 0, sizeof(regs));
	regs.r[LP_UNWIND_RIP] = (uint64_t)f3;
	regs.r[LP_UNWIND_RSP] = (uint64_t)stack;
	regs.known = PC_SP_ONLY;
	why[0] = 0;
	CHECK_EQ(unwind(u, &regs, &f, why, sizeof(why)), -1);
	CHECK_EQ(f.n, 1);
	CHECK_WHY(why, "not in a known module");
	munmap(page, 4096);
}

/* 5: a thread inside a signal handler: g1 -> g2 -> g3 interrupted, h1 -> h2 -> read(). */
static int sig_pipe[2];
static atomic_int sig_tid;
static volatile int g3_spinning, g3_stop;

NOINLINE int h2(int fd)
{
	char c;

	return (int)blocking_read(fd, &c, 1) + 1;
}

NOINLINE void h1(int sig)
{
	(void)sig;
	g3_stop = h2(sig_pipe[0]);
}

NOINLINE int g3(void)
{
	g3_spinning = 1;
	while (!g3_stop)
		__asm__ volatile("pause" ::: "memory");
	return g3_stop;
}

NOINLINE int g2(void)
{
	return g3() + 1;
}

NOINLINE int g1(void)
{
	return g2() + 1;
}

NOINLINE void *sig_main(void *arg)
{
	(void)arg;
	atomic_store(&sig_tid, gettid());
	return (void *)(intptr_t)g1();
}

static void test_signal_frame(struct lp_unwinder *u)
{
	struct sigaction sa = {.sa_handler = h1};
	struct frames f = {.stop_at = -1};
	int ih2, ih1, ig3, ig2, ig1;
	struct lp_regs regs;
	char why[256];
	pthread_t t;

	CHECK_EQ(pipe(sig_pipe), 0);
	sigemptyset(&sa.sa_mask);
	CHECK_EQ(sigaction(SIGUSR2, &sa, NULL), 0);
	CHECK_EQ(pthread_create(&t, NULL, sig_main, NULL), 0);
	while (!g3_spinning)
		usleep(1000);
	CHECK_EQ(pthread_kill(t, SIGUSR2), 0);
	CHECK(wait_in_read(atomic_load(&sig_tid), sig_pipe[0], &regs));

	why[0] = 0;
	CHECK_EQ(unwind(u, &regs, &f, why, sizeof(why)), 0);
	if (why[0])
		fprintf(stderr, "signal frame: %s\n", why);
	ih2 = find_frame(&f, 0, (void *)h2);
	ih1 = find_frame(&f, 0, (void *)h1);
	ig3 = find_frame(&f, 0, (void *)g3);
	ig2 = find_frame(&f, 0, (void *)g2);
	ig1 = find_frame(&f, 0, (void *)g1);
	CHECK_EQ(ih2, 1);
	CHECK_EQ(ih1, 2);
	/* __restore_rt in between, then the interrupted pc, exact. */
	CHECK_EQ(ig3, 4);
	CHECK(ig3 > 0 && f.exact[ig3]);
	CHECK(!f.exact[3]);
	CHECK_EQ(ig2, 5);
	CHECK_EQ(ig1, 6);
	CHECK(find_frame(&f, 0, (void *)sig_main) > ig1);
	if (check_failures)
		print_frames("signal frame", &f);
	bench("pc and sp (inside a signal handler)", u, &regs);

	CHECK_EQ(write(sig_pipe[1], "x", 1), 1);
	CHECK_EQ(pthread_join(t, NULL), 0);
}

/*
 * A frame whose CFA is rbp-based (alloca): with only pc and sp known it
 * must come out unreliable, with the full context right.
 */
static volatile int fp_spinning, fp_stop;

NOINLINE int fp_func(int n)
{
	char *p = alloca(n);

	memset(p, n, n);
	fp_spinning = 1;
	while (!fp_stop)
		__asm__ volatile("pause" : : "r"(p) : "memory");
	return p[n - 1];
}

NOINLINE int fp_caller(int n)
{
	return fp_func(n) + 1;
}

NOINLINE void *fp_main(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)fp_caller(200);
}

static void test_missing_regs(struct lp_unwinder *u)
{
	struct frames f = {.stop_at = -1};
	struct lp_regs regs;
	char why[256];
	pthread_t t;

	CHECK_EQ(pthread_create(&t, NULL, fp_main, NULL), 0);
	while (!fp_spinning)
		usleep(1000);
	CHECK(capture(t, &regs));
	CHECK(in_func(regs.r[LP_UNWIND_RIP], true, (void *)fp_func));

	why[0] = 0;
	CHECK_EQ(unwind(u, &regs, &f, why, sizeof(why)), 0);
	if (why[0])
		fprintf(stderr, "frame pointer, full context: %s\n", why);
	CHECK_EQ(find_frame(&f, 0, (void *)fp_func), 0);
	CHECK_EQ(find_frame(&f, 0, (void *)fp_caller), 1);
	CHECK_EQ(find_frame(&f, 0, (void *)fp_main), 2);

	regs.known = PC_SP_ONLY;
	why[0] = 0;
	CHECK_EQ(unwind(u, &regs, &f, why, sizeof(why)), -1);
	CHECK(f.n <= 1);
	CHECK_WHY(why, "unknown");
	printf("rbp-based CFA with pc and sp only: %s\n", why);

	fp_stop = 1;
	release_capture();
	CHECK_EQ(pthread_join(t, NULL), 0);
}

/* The address of @name in the vDSO, from its in-memory image. */
static uintptr_t vdso_sym(const char *name)
{
	const ElfW(Ehdr) *eh = (const void *)getauxval(AT_SYSINFO_EHDR);
	const ElfW(Phdr) * ph;
	const ElfW(Shdr) * sh;
	uintptr_t base, bias = 0;
	int i;

	if (!eh)
		return 0;
	base = (uintptr_t)eh;
	ph = (const void *)(base + eh->e_phoff);
	for (i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && ph[i].p_offset == 0)
			bias = base - ph[i].p_vaddr;
	sh = (const void *)(base + eh->e_shoff);
	for (i = 0; i < eh->e_shnum; i++) {
		const ElfW(Sym) *sym = (const void *)(base + sh[i].sh_offset);
		const char *str = (const char *)(base + sh[sh[i].sh_link].sh_offset);
		size_t j;

		if (sh[i].sh_type != SHT_DYNSYM)
			continue;
		for (j = 0; j < sh[i].sh_size / sizeof(*sym); j++)
			if (sym[j].st_value && strcmp(str + sym[j].st_name, name) == 0)
				return bias + sym[j].st_value;
	}
	return 0;
}

/*
 * A frame in the vDSO (a thread interrupted in clock_gettime()): its
 * entry, "called" from read() on a copy of the parked thread's stack, so
 * the rest of the walk is the parked thread's own.
 */
static void test_vdso(struct lp_unwinder *u, const struct lp_regs *parked)
{
	uintptr_t fn = vdso_sym("__vdso_clock_gettime");
	const size_t nwords = 16384;
	uint64_t *copy = calloc(nwords + 1, sizeof(*copy));
	struct frames f = {.stop_at = -1};
	struct lp_regs regs;
	size_t n = 0;
	char why[256];

	CHECK(fn != 0);
	CHECK(copy != NULL);
	if (!fn || !copy) {
		free(copy);
		return;
	}
	/* The parked thread's stack up to its end, or 128 KiB of it. */
	while (n < nwords && vm_read(parked->r[LP_UNWIND_RSP] + 8 * n, &copy[n + 1], &self_pid))
		n++;
	copy[0] = parked->r[LP_UNWIND_RIP];
	memset(&regs, 0, sizeof(regs));
	regs.r[LP_UNWIND_RIP] = fn;
	regs.r[LP_UNWIND_RSP] = (uint64_t)copy;
	regs.known = PC_SP_ONLY;
	why[0] = 0;
	CHECK_EQ(unwind(u, &regs, &f, why, sizeof(why)), 0);
	if (why[0])
		fprintf(stderr, "vdso: %s\n", why);
	CHECK(f.n >= 5 && f.pc[0] == fn && f.exact[0]);
	CHECK(f.n >= 5 && f.pc[1] == parked->r[LP_UNWIND_RIP] && !f.exact[1]);
	CHECK_EQ(find_frame(&f, 0, (void *)f3), 2);
	CHECK_EQ(find_frame(&f, 0, (void *)f2), 3);
	CHECK_EQ(find_frame(&f, 0, (void *)f1), 4);
	if (check_failures)
		print_frames("vdso", &f);
	free(copy);
}

/* More frames than the limit: a thread blocked at the end of a deep recursion. */
static int deep_pipe[2];
static atomic_int deep_tid;

NOINLINE int recurse(int n, int fd)
{
	/* Read after the call: no tail call, no recursion turned into a loop. */
	volatile int keep = n;
	int r = n ? recurse(n - 1, fd) : f3(fd);

	return r + keep;
}

NOINLINE void *deep_main(void *arg)
{
	(void)arg;
	atomic_store(&deep_tid, gettid());
	return (void *)(intptr_t)recurse(300, deep_pipe[0]);
}

static void test_deep(struct lp_unwinder *u)
{
	struct frames f = {.stop_at = -1};
	struct lp_regs regs;
	char why[256];
	pthread_t t;

	CHECK_EQ(pipe(deep_pipe), 0);
	CHECK_EQ(pthread_create(&t, NULL, deep_main, NULL), 0);
	while (!atomic_load(&deep_tid))
		usleep(1000);
	CHECK(wait_in_read(atomic_load(&deep_tid), deep_pipe[0], &regs));
	why[0] = 0;
	CHECK_EQ(unwind(u, &regs, &f, why, sizeof(why)), -1);
	CHECK_WHY(why, "more than 256 frames");
	CHECK_EQ(f.n, LP_UNWIND_MAX_FRAMES);
	/* The walk itself was fine up to there. */
	CHECK_EQ(find_frame(&f, 0, (void *)f3), 1);
	for (int i = 2; i < LP_UNWIND_MAX_FRAMES; i++)
		CHECK(in_func(f.pc[i], false, (void *)recurse));

	CHECK_EQ(close(deep_pipe[1]), 0);
	CHECK_EQ(pthread_join(t, NULL), 0);
}

/*
 * Code without CFI in the chain: f3 called from assembly that has no FDE.
 * libdwfl would go on with frame-pointer guesses there.
 */
__asm__(".text\n"
	".globl nocfi_call\n"
	".type nocfi_call, @function\n"
	"nocfi_call:\n"
	"	sub $8, %rsp\n"
	"	call f3\n"
	"	add $8, %rsp\n"
	"	ret\n"
	".size nocfi_call, .-nocfi_call\n");
int nocfi_call(int fd);

/* Built a second time without .eh_frame: its CFI is in .debug_frame only. */
int dbg_frame_only(int fd);

static int chain_pipe[2];
static atomic_int chain_tid;

NOINLINE void *chain_main(void *arg)
{
	int (*fn)(int) = arg;

	atomic_store(&chain_tid, gettid());
	return (void *)(intptr_t)fn(chain_pipe[0]);
}

/* Starts a thread in chain_main -> @fn -> f3 -> read() and unwinds it from pc and sp. */
static int unwind_chain(struct lp_unwinder *u, int (*fn)(int), struct frames *f, char *why,
			size_t whylen)
{
	struct lp_regs regs;
	pthread_t t;
	int rc = -2;

	atomic_store(&chain_tid, 0);
	CHECK_EQ(pipe(chain_pipe), 0);
	CHECK_EQ(pthread_create(&t, NULL, chain_main, (void *)fn), 0);
	while (!atomic_load(&chain_tid))
		usleep(1000);
	CHECK(wait_in_read(atomic_load(&chain_tid), chain_pipe[0], &regs));
	why[0] = 0;
	rc = unwind(u, &regs, f, why, whylen);
	close(chain_pipe[1]);
	CHECK_EQ(pthread_join(t, NULL), 0);
	close(chain_pipe[0]);
	return rc;
}

static void test_cfi_sources(struct lp_unwinder *u)
{
	struct frames f = {.stop_at = -1};
	char why[256];

	CHECK_EQ(unwind_chain(u, nocfi_call, &f, why, sizeof(why)), -1);
	CHECK_WHY(why, "no unwind information for");
	CHECK_EQ(find_frame(&f, 0, (void *)f3), 1);
	CHECK_EQ(f.n, 2);

	CHECK_EQ(unwind_chain(u, dbg_frame_only, &f, why, sizeof(why)), 0);
	if (why[0])
		fprintf(stderr, ".debug_frame: %s\n", why);
	CHECK_EQ(find_frame(&f, 0, (void *)f3), 1);
	CHECK_EQ(find_frame(&f, 0, (void *)dbg_frame_only), 2);
	CHECK_EQ(find_frame(&f, 0, (void *)chain_main), 3);
	if (check_failures)
		print_frames(".debug_frame", &f);
}

/* Objects loaded and unloaded later. */
static void test_refresh(struct lp_unwinder *u, const struct lp_regs *good)
{
	struct frames f = {.stop_at = -1};
	struct lp_regs regs = *good;
	char why[256], err[256];
	double t0, t1;
	void *h, *fn;
	int i;

	t0 = now();
	for (i = 0; i < 1000; i++)
		CHECK_EQ(lp_unwinder_refresh(u, err, sizeof(err)), 0);
	t1 = now();
	printf("refresh with nothing changed: %.2f us\n", (t1 - t0) / 1000 * 1e6);

	/* Part of libc6, and linked by nobody. */
	h = dlopen("libBrokenLocale.so.1", RTLD_NOW | RTLD_LOCAL);
	CHECK(h != NULL);
	if (!h) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return;
	}
	fn = dlsym(h, "__ctype_get_mb_cur_max");
	CHECK(fn != NULL);
	regs.r[LP_UNWIND_RIP] = (uint64_t)fn;
	why[0] = 0;
	CHECK_EQ(unwind(u, &regs, &f, why, sizeof(why)), -1);
	CHECK_WHY(why, "not in a known module");

	t0 = now();
	CHECK_EQ(lp_unwinder_refresh(u, err, sizeof(err)), 0);
	t1 = now();
	printf("refresh after dlopen: %.0f us\n", (t1 - t0) * 1e6);
	why[0] = 0;
	unwind(u, &regs, &f, why, sizeof(why));
	/* Known now: its first frame passes (whatever the parked stack's word says after it). */
	CHECK(f.n >= 1);

	dlclose(h);
	CHECK_EQ(lp_unwinder_refresh(u, err, sizeof(err)), 0);
	why[0] = 0;
	CHECK_EQ(unwind(u, &regs, &f, why, sizeof(why)), -1);
	CHECK_WHY(why, "not in a known module");
}

int main(void)
{
	struct sigaction sa = {.sa_sigaction = capture_handler,
			       .sa_flags = SA_SIGINFO | SA_RESTART};
	struct lp_regs pc_sp;
	struct lp_unwinder *u;
	char err[256];
	double t0, t1;

	self_pid = getpid();
	CHECK_EQ(pipe(capture_pipe), 0);
	sigemptyset(&sa.sa_mask);
	CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);

	t0 = now();
	u = lp_unwinder_new(err, sizeof(err));
	t1 = now();
	CHECK(u != NULL);
	if (!u) {
		fprintf(stderr, "lp_unwinder_new: %s\n", err);
		return CHECK_DONE();
	}
	printf("lp_unwinder_new: %.0f us\n", (t1 - t0) * 1e6);

	test_parked(u, &pc_sp);
	test_corrupt(u, &pc_sp);
	test_anon(u, &pc_sp);
	test_vdso(u, &pc_sp);
	test_cfi_sources(u);
	test_deep(u);
	test_signal_frame(u);
	test_missing_regs(u);
	test_refresh(u, &pc_sp);

	/* The parked thread is still blocked in read(): EOF ends it. */
	close(park_pipe[1]);
	lp_unwinder_free(u);
	return CHECK_DONE();
}
#endif
