/* SPDX-License-Identifier: MIT */
/*
 * The physical limit of a redirect: a call that reaches bench_direct()
 * through exactly one extra direct jump, as a patched entry would if its
 * jump led straight to the new implementation.
 */
	.text
	.globl	bench_onejmp
	.type	bench_onejmp, @function
	.p2align 4
bench_onejmp:
	.cfi_startproc
	jmp	bench_direct
	.cfi_endproc
	.size	bench_onejmp, .-bench_onejmp

	.section .note.GNU-stack, "", @progbits
