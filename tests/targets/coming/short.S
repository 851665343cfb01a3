/* SPDX-License-Identifier: MIT */
/*
 * coming_short: a function of libcoming.so too short for an entry jump
 * (tests/patches/coming/coming_short.c must be refused as a whole).
 */
	.text
	.globl	coming_short
	.type	coming_short, @function
coming_short:			/* int coming_short(int): returns 0 */
	xor	%eax, %eax
	ret
	.size	coming_short, . - coming_short

	.section .note.GNU-stack, "", @progbits
