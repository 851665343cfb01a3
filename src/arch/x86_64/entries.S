/* SPDX-License-Identifier: MIT */
/*
 * Entries from patched code into the runtime's C code, which must not
 * change any register their interrupted caller may still need.  The ABI
 * lets a callee clobber %rax, %rcx, %rdx, %rsi, %rdi, %r8-%r11 and the
 * vector registers, but a caller built with -fipa-ra may keep values in
 * those a callee it knows leaves alone: both entries keep all of them.
 *
 * lp_arch_switch_entry: called by a slow stub, at the entry of a function
 * in transition, for a thread whose switch is pending; what the function
 * was called with passes through untouched.  lp_task_self_switch() gets
 * the stack pointer the function was entered with: its caller's return
 * address is the first word there.
 *
 * lp_arch_loader_entry: where the dynamic loader's debugger hook
 * (_dl_debug_state, at _r_debug.r_brk) jumps once the runtime watches it;
 * entered as the hook itself would be, by the loader's call, it returns to
 * the loader.  Calls lp_loader_event().
 */

/* PRESERVING_CALL name, function, arg: the whole entry @name. */
.macro PRESERVING_CALL name, function, arg
	.text
	.globl	\name
	.hidden	\name
	.type	\name, @function
\name:
	.cfi_startproc
	endbr64
	pushq	%rbp
	.cfi_def_cfa_offset 16
	.cfi_offset %rbp, -16
	movq	%rsp, %rbp
	.cfi_def_cfa_register %rbp
	pushq	%rax
	pushq	%rdi
	pushq	%rsi
	pushq	%rdx
	pushq	%rcx
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	subq	$256, %rsp
	andq	$-16, %rsp
	movdqu	%xmm0, 0(%rsp)
	movdqu	%xmm1, 16(%rsp)
	movdqu	%xmm2, 32(%rsp)
	movdqu	%xmm3, 48(%rsp)
	movdqu	%xmm4, 64(%rsp)
	movdqu	%xmm5, 80(%rsp)
	movdqu	%xmm6, 96(%rsp)
	movdqu	%xmm7, 112(%rsp)
	movdqu	%xmm8, 128(%rsp)
	movdqu	%xmm9, 144(%rsp)
	movdqu	%xmm10, 160(%rsp)
	movdqu	%xmm11, 176(%rsp)
	movdqu	%xmm12, 192(%rsp)
	movdqu	%xmm13, 208(%rsp)
	movdqu	%xmm14, 224(%rsp)
	movdqu	%xmm15, 240(%rsp)
	\arg
	call	\function
	movdqu	0(%rsp), %xmm0
	movdqu	16(%rsp), %xmm1
	movdqu	32(%rsp), %xmm2
	movdqu	48(%rsp), %xmm3
	movdqu	64(%rsp), %xmm4
	movdqu	80(%rsp), %xmm5
	movdqu	96(%rsp), %xmm6
	movdqu	112(%rsp), %xmm7
	movdqu	128(%rsp), %xmm8
	movdqu	144(%rsp), %xmm9
	movdqu	160(%rsp), %xmm10
	movdqu	176(%rsp), %xmm11
	movdqu	192(%rsp), %xmm12
	movdqu	208(%rsp), %xmm13
	movdqu	224(%rsp), %xmm14
	movdqu	240(%rsp), %xmm15
	leaq	-72(%rbp), %rsp
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rcx
	popq	%rdx
	popq	%rsi
	popq	%rdi
	popq	%rax
	popq	%rbp
	.cfi_def_cfa %rsp, 8
	ret
	.cfi_endproc
	.size	\name, .-\name
.endm

/* 8(%rbp) returns into the stub; 16(%rbp) is the function's entry sp. */
PRESERVING_CALL lp_arch_switch_entry, lp_task_self_switch, "leaq 16(%rbp), %rdi"
PRESERVING_CALL lp_arch_loader_entry, lp_loader_event, ""

	.section .note.GNU-stack, "", @progbits
