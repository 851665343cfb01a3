/* SPDX-License-Identifier: MIT */
/*
 * x86-64 code analysis and generation for redirecting a function.
 *
 * A patched function gets a 5-byte `jmp rel32` at its patch site (its entry,
 * or just after a leading endbr64) to a trampoline near it.  The bytes the
 * jump displaces are copied, relocated, to the trampoline's "orig" stub,
 * which then jumps back behind the displaced bytes: that is how the original
 * implementation still runs.  Everything here works on byte buffers and
 * addresses: it neither reads nor writes the process's code itself, so unit
 * tests can feed it any bytes.
 */
#ifndef LP_ARCH_H
#define LP_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LP_JMP_SIZE	 5  /* jmp rel32 */
#define LP_MAX_DISPLACED 20 /* at most 5 + a 15-byte instruction */
#define LP_MAX_INSNS	 LP_MAX_DISPLACED

struct lp_prologue {
	uintptr_t func; /* function entry */
	uintptr_t site; /* where the jump is written: func, or func + 4 after endbr64 */
	size_t len;	/* displaced bytes at site, >= LP_JMP_SIZE, whole instructions */
	uint8_t orig[LP_MAX_DISPLACED]; /* the displaced bytes as found */
	bool padding;			/* the displaced bytes are only nops (e.g.
					   -fpatchable-function-entry): nothing to relocate */
	size_t ninsns;			/* instructions in the displaced bytes */
	uint8_t insn_off[LP_MAX_INSNS]; /* start of each, relative to site */
};

/*
 * Decide where and how function [addr, addr + size) can be redirected.
 * @code holds the function's current bytes (size of them), @addr the
 * address they run at.  Refuses (-1, reason in @err) a function that is
 * too short, whose body branches into the displaced bytes, or whose
 * displaced bytes hold an instruction that cannot run elsewhere (a call,
 * whose return address would point into them; syscall; ...).  A ret or jmp
 * among the displaced bytes is fine when the function is that short.
 */
int lp_arch_analyse(const uint8_t *code, size_t size, uintptr_t addr, struct lp_prologue *out,
		    char *err, size_t errlen);

/*
 * Whether @code[0, @len), running at @addr, holds only padding between
 * functions (nops or int3): code no branch leads to, which a jump may
 * displace after a function shorter than the jump.
 */
bool lp_arch_is_padding(const uint8_t *code, size_t len, uintptr_t addr);

/*
 * Call-clobbered registers as a mask: rax, rcx, rdx, rsi, rdi, r8-r11 in
 * bits 0-8, xmm0-15 (with their ymm and zmm extensions) in bits 9-24.
 */
#define LP_CLOBBER_GPRS 0x1ffu
#define LP_CLOBBER_ALL	((1u << 25) - 1)

/* How to find the code of a function the analysed one calls, in its object. */
struct lp_clobber_ctx {
	/* 0 with the function's code at @addr (*code, *size bytes), or -1. */
	int (*callee)(uintptr_t addr, const uint8_t **code, size_t *size, void *arg);
	void *arg;
};

/*
 * The call-clobbered registers the function @code[0, @size) at @addr may
 * change, through the functions it calls too (@ctx->callee finds those of
 * its object; others change them all).  A register pushed before it is
 * first written counts as saved.  @replacement: estimate from above (a
 * replacement function, which must change no more than the original, as
 * callers built with -fipa-ra may count on); else from below (the
 * original).  A replacement's calls count for the general registers only:
 * the vector registers a callee of a replacement changes are not seen.
 */
uint32_t lp_arch_clobbers(const struct lp_clobber_ctx *ctx, const uint8_t *code, size_t size,
			  uintptr_t addr, bool replacement);

/* "rcx, r8, xmm3" for a clobber mask. */
void lp_arch_clobber_names(uint32_t mask, char *buf, size_t len);

/*
 * Write to @buf the displaced instructions of @p relocated to run at @at
 * (RIP-relative operands and relative branches fixed up), followed by a jump
 * to p->site + p->len.  @insn_map receives, for each displaced instruction i,
 * the offset in @buf where its relocated copy starts (for moving a thread
 * whose IP is inside the displaced bytes).  Returns the number of bytes
 * written, or -1 with a reason when an operand cannot reach its target from
 * @at or @buf is too small.
 */
ssize_t lp_arch_relocate(const struct lp_prologue *p, uint8_t *buf, size_t bufsize, uintptr_t at,
			 uint8_t insn_map[LP_MAX_INSNS], char *err, size_t errlen);

/* Encode `jmp rel32` from @from to @to in @buf[5]; -1 when out of reach. */
int lp_arch_encode_jmp(uint8_t buf[LP_JMP_SIZE], uintptr_t from, uintptr_t to);

/*
 * The dispatch stubs of one redirected function.  Pointers the runtime
 * changes at any time (atomically, 8-byte aligned) live in slots outside the
 * code; the code only jumps through them.  The per-thread fields are bytes
 * of the thread's initial-exec TLS, addressed %fs-relative.
 */
struct lp_stub_layout {
	uintptr_t at;		  /* where the stubs will run */
	uintptr_t slot_target;	  /* entry: jmp *slot_target */
	uintptr_t slot_patched;	  /* slow: for threads not UNPATCHED */
	uintptr_t slot_unpatched; /* slow: for UNPATCHED threads */
	uintptr_t slot_switch;	  /* slow: called for a pending thread */
	int32_t state_tpoff;	  /* the thread's state byte */
	int32_t pending_tpoff;	  /* its pending byte: non-zero calls slot_switch */
	uint8_t state_unpatched;  /* the state value meaning UNPATCHED */
};

struct lp_stub_offsets {
	size_t entry; /* the patch site's jump lands here */
	size_t slow;  /* per-thread choice, used while the function is in transition */
	size_t size;  /* bytes used */
};

/*
 * Emit the entry and slow stubs into @buf:
 *   entry: jmp *slot_target(%rip)
 *   slow:  cmpb $0, %fs:pending
 *          jne 3f
 *       1: cmpb $state_unpatched, %fs:state
 *          je 2f
 *          jmp *slot_patched(%rip)
 *       2: jmp *slot_unpatched(%rip)
 *       3: call *slot_switch(%rip)
 *          jmp 1b
 * The function called through slot_switch must preserve every register that
 * may carry an argument.
 * Returns 0, or -1 when a slot is out of RIP-relative reach or @buf too small.
 */
int lp_arch_emit_stubs(const struct lp_stub_layout *l, uint8_t *buf, size_t bufsize,
		       struct lp_stub_offsets *off);

/*
 * The function the slow stub calls for a pending thread (switch.S): saves
 * the argument registers, calls lp_task_self_switch(sp) with the stack
 * pointer the patched function was entered with, restores them.
 */
void lp_arch_switch_entry(void);

/*
 * The loader's debugger hook leads here (loader.c): saves every register a
 * caller of a function may still need, in case the loader's code was built
 * to know that its hook clobbers none, and calls lp_loader_event().
 */
void lp_arch_loader_entry(void);

#endif /* LP_ARCH_H */
