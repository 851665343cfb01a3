/* SPDX-License-Identifier: MIT */
/*
 * Reliable stack unwinding of the threads of this process, for the
 * per-thread consistency check: a thread may switch to patched code only
 * when every frame of its stack is known.  "Reliable" is meant as in the
 * kernel's livepatch: an unwind succeeds only when it walked, with CFI
 * alone, from the innermost frame to the thread's first frame (whose CFI
 * says the return address is undefined) and every pc lies in a known ELF
 * object.  Everything else is reported as unreliable, never guessed.
 *
 * The unwinder never touches the thread's memory itself: stack words are
 * read through the caller's callback, so a corrupt stack cannot crash it.
 * It allocates and takes locks: call it from the agent thread, never from
 * a signal handler.  Calls on one unwinder are serialized by a mutex; to
 * unwind in parallel, give each worker thread its own unwinder.
 */
#ifndef LP_RUNTIME_UNWIND_H
#define LP_RUNTIME_UNWIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lp_unwinder;

/* Frames beyond this many make an unwind unreliable. */
#define LP_UNWIND_MAX_FRAMES 256

/*
 * DWARF register numbers of x86-64: 0 rax, 1 rdx, 2 rcx, 3 rbx, 4 rsi,
 * 5 rdi, 6 rbp, 7 rsp, 8-15 r8-r15, 16 rip.
 */
#define LP_UNWIND_NREGS 17
#define LP_UNWIND_RBP	6
#define LP_UNWIND_RSP	7
#define LP_UNWIND_RIP	16

struct lp_regs {
	uint64_t r[LP_UNWIND_NREGS];
	uint32_t known; /* bit n set: r[n] holds the register's value; rsp and rip are required */
};

/* Read the 8 bytes at @addr (stack memory of the thread); false when they cannot be read. */
typedef bool (*lp_mem_read_fn)(uintptr_t addr, uint64_t *word, void *arg);

/*
 * One frame, innermost first.  @exact is true when @pc is the address of
 * the next instruction the frame executes: the innermost frame, and a
 * frame interrupted by a signal (the one just outside __restore_rt).
 * Otherwise @pc is a return address and the call is at pc - 1.  Return 0
 * to go on; any other value (use positive ones: -1 means unreliable) stops
 * the unwind and lp_unwind() returns it.
 */
typedef int (*lp_frame_fn)(uintptr_t pc, bool exact, void *arg);

/* Report the modules (ELF objects) mapped in this process.  NULL with @err on failure. */
struct lp_unwinder *lp_unwinder_new(char *err, size_t errlen);

/*
 * Report the modules again when objects were loaded or unloaded since
 * (dl_iterate_phdr's dlpi_adds/dlpi_subs tell); cheap when nothing
 * changed.  0, or -1 with @err.
 */
int lp_unwinder_refresh(struct lp_unwinder *u, char *err, size_t errlen);

void lp_unwinder_free(struct lp_unwinder *u);

/*
 * Unwind from @regs, calling @frame (may be NULL) for each frame.  Returns
 * 0 when the unwind is reliable and complete, the first non-zero value
 * @frame returned, or -1 when it is unreliable (@why, if not NULL, says
 * why in a few words, e.g. "no unwind information for 0x7f...", "cannot
 * read the stack at 0x7ffc...", "more than 256 frames").
 */
int lp_unwind(struct lp_unwinder *u, const struct lp_regs *regs, lp_mem_read_fn read,
	      void *read_arg, lp_frame_fn frame, void *frame_arg, char *why, size_t whylen);

#endif
