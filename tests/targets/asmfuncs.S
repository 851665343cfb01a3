/* SPDX-License-Identifier: MIT */
/*
 * asmfuncs.S - two functions lpatch must refuse to patch: a 5-byte entry
 * jump would not fit in too_short, and would cut loop_back's loop, whose
 * branch goes back to offset 2, inside the first five bytes.
 */
	.text

	.globl	too_short
	.type	too_short, @function
too_short:			/* int too_short(int): returns 0 */
	xor	%eax, %eax	/* 2 bytes */
	ret			/* 1 byte: the function is 3 bytes long */
	.size	too_short, . - too_short

	.p2align 4
	.globl	loop_back
	.type	loop_back, @function
loop_back:			/* int loop_back(int n): max(n, 1) */
	xor	%eax, %eax	/* offset 0, 2 bytes */
1:	add	$1, %eax	/* offset 2: the branch target */
	cmp	%edi, %eax
	jl	1b		/* back into the first five bytes */
	ret
	.size	loop_back, . - loop_back

	.section .note.GNU-stack, "", @progbits
