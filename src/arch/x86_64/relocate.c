// SPDX-License-Identifier: MIT
/*
 * Copying the displaced instructions to the trampoline so that they do the
 * same there: RIP-relative operands and relative branches are rewritten to
 * reach the same absolute addresses from the new place.
 */
#include "lp_arch.h"
#include "insn.h"

#include <string.h>

#define JMP_REL32_SIZE 5
#define JCC_REL32_SIZE 6
#define JMP_ABS_SIZE   14 /* jmp *0(%rip); .quad target */

/* jmp *0(%rip) followed by the target: reaches anywhere. */
static void emit_jmp_abs(struct lp_emit *e, uintptr_t to)
{
	static const uint8_t jmp_mem[6] = {0xff, 0x25, 0, 0, 0, 0};

	lp_emit_bytes(e, jmp_mem, sizeof(jmp_mem));
	lp_emit_u64(e, to);
}

/* A jump to @to from the end of @e placed at @at, rel32 when it reaches. */
static void emit_jmp(struct lp_emit *e, uintptr_t at, uintptr_t to)
{
	uintptr_t next = at + e->pos + JMP_REL32_SIZE;

	if (!lp_fits_rel32(next, to)) {
		emit_jmp_abs(e, to);
		return;
	}
	lp_emit_u8(e, 0xe9);
	lp_emit_u32(e, (uint32_t)(to - next));
}

/*
 * jcc rel32 to @to, or when that does not reach, the inverted condition
 * jumping over an absolute jump.
 */
static void emit_jcc(struct lp_emit *e, uintptr_t at, int cc, uintptr_t to)
{
	uintptr_t next = at + e->pos + JCC_REL32_SIZE;

	if (!lp_fits_rel32(next, to)) {
		lp_emit_u8(e, 0x70 + (cc ^ 1));
		lp_emit_u8(e, JMP_ABS_SIZE);
		emit_jmp_abs(e, to);
		return;
	}
	lp_emit_u8(e, 0x0f);
	lp_emit_u8(e, 0x80 + cc);
	lp_emit_u32(e, (uint32_t)(to - next));
}

/* Rewrite the branch @in, to the same target, at the end of @e. */
static void emit_branch(struct lp_emit *e, uintptr_t at, const struct lp_insn *in,
			const ZydisDecodedOperand *rel)
{
	uintptr_t to = lp_insn_target(in, rel);
	int cc = lp_insn_jcc_cc(in);

	if (cc >= 0)
		emit_jcc(e, at, cc, to);
	else
		emit_jmp(e, at, to);
}

/*
 * Copy @in with its RIP-relative displacement adjusted to the new address.
 * The length does not change, so the displacement's base (the end of the
 * instruction) moves exactly as much as the instruction.
 */
static int emit_rip_mem(struct lp_emit *e, uintptr_t at, const struct lp_insn *in,
			const ZydisDecodedOperand *mem, const uint8_t *bytes)
{
	uintptr_t target = lp_insn_target(in, mem);
	uintptr_t next = at + e->pos + in->zi.length;
	uint8_t copy[ZYDIS_MAX_INSTRUCTION_LENGTH];

	if (in->zi.raw.disp.size != 32 || !lp_fits_rel32(next, target))
		return -1;
	memcpy(copy, bytes, in->zi.length);
	lp_put_u32(copy + in->zi.raw.disp.offset, (uint32_t)(target - next));
	lp_emit_bytes(e, copy, in->zi.length);
	return 0;
}

/* Emit displaced instruction @i of @p relocated. */
static int relocate_one(const struct lp_prologue *p, size_t i, struct lp_emit *e, uintptr_t at,
			char *err, size_t errlen)
{
	size_t off = p->insn_off[i];
	size_t func_off = p->site - p->func + off;
	const ZydisDecodedOperand *op;
	struct lp_insn in;

	if (off >= p->len ||
	    lp_insn_decode(p->orig + off, p->len - off, p->site + off, &in) != LP_DECODE_OK) {
		lp_set_err(err, errlen, "cannot decode instruction at +0x%zx", func_off);
		return -1;
	}
	op = lp_insn_rel_imm(&in);
	if (op) {
		emit_branch(e, at, &in, op);
		return 0;
	}
	op = lp_insn_rip_mem(&in);
	if (op && emit_rip_mem(e, at, &in, op, p->orig + off)) {
		lp_set_err(err, errlen,
			   "RIP-relative operand at +0x%zx out of reach from the trampoline",
			   func_off);
		return -1;
	}
	if (!op)
		lp_emit_bytes(e, p->orig + off, in.zi.length);
	return 0;
}

ssize_t lp_arch_relocate(const struct lp_prologue *p, uint8_t *buf, size_t bufsize, uintptr_t at,
			 uint8_t insn_map[LP_MAX_INSNS], char *err, size_t errlen)
{
	struct lp_emit e = {.buf = buf, .size = bufsize};
	size_t i;

	if (p->ninsns > LP_MAX_INSNS || p->len > LP_MAX_DISPLACED) {
		lp_set_err(err, errlen, "invalid prologue description");
		return -1;
	}
	for (i = 0; i < p->ninsns; i++) {
		/* Padding nops are not copied: a thread in them resumes at the jump. */
		insn_map[i] = (uint8_t)e.pos;
		if (!p->padding && relocate_one(p, i, &e, at, err, errlen))
			return -1;
	}
	emit_jmp(&e, at, p->site + p->len);
	if (e.overflow) {
		lp_set_err(err, errlen, "trampoline buffer too small (%zu bytes)", bufsize);
		return -1;
	}
	return (ssize_t)e.pos;
}

int lp_arch_encode_jmp(uint8_t buf[LP_JMP_SIZE], uintptr_t from, uintptr_t to)
{
	uintptr_t next = from + LP_JMP_SIZE;

	if (!lp_fits_rel32(next, to))
		return -1;
	buf[0] = 0xe9;
	lp_put_u32(buf + 1, (uint32_t)(to - next));
	return 0;
}
