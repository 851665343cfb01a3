// SPDX-License-Identifier: MIT
/*
 * Which call-clobbered registers a function's code may change.
 *
 * The ABI lets any function change rax, rcx, rdx, rsi, rdi, r8-r11 and the
 * vector registers, so a caller normally keeps nothing there across a call.
 * But GCC's interprocedural register allocation (-fipa-ra, on from -O2)
 * lets a caller in the same translation unit keep values in the registers
 * it knows the callee leaves alone.  A replacement that changes one of
 * those breaks such a caller, silently.  The runtime compares the original
 * function's set (estimated from below) with the replacement's (estimated
 * from above) and refuses a replacement that changes more (object.c).
 */
#include <stdio.h>

#include "insn.h"
#include "lp_arch.h"

#define MAX_DEPTH 3
#define XMM_FIRST 9

/* The bit of a register in an lp_clobbers mask; 0 when it is not call-clobbered. */
static uint32_t reg_bit(ZydisRegister reg)
{
	static const ZydisRegister gprs[] = {
	    ZYDIS_REGISTER_RAX, ZYDIS_REGISTER_RCX, ZYDIS_REGISTER_RDX,
	    ZYDIS_REGISTER_RSI, ZYDIS_REGISTER_RDI, ZYDIS_REGISTER_R8,
	    ZYDIS_REGISTER_R9,	ZYDIS_REGISTER_R10, ZYDIS_REGISTER_R11,
	};
	ZydisRegisterClass cls = ZydisRegisterGetClass(reg);
	ZydisRegister wide;

	if (cls == ZYDIS_REGCLASS_XMM || cls == ZYDIS_REGCLASS_YMM || cls == ZYDIS_REGCLASS_ZMM) {
		int id = ZydisRegisterGetId(reg);

		return id >= 0 && id < 16 ? 1u << (XMM_FIRST + id) : 0;
	}
	wide = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, reg);
	for (unsigned i = 0; i < sizeof(gprs) / sizeof(gprs[0]); i++)
		if (wide == gprs[i])
			return 1u << i;
	return 0;
}

struct scan {
	const struct lp_clobber_ctx *ctx;
	bool replacement; /* estimate from above (else from below) */
	int depth;
	uint32_t saved; /* pushed before their first write: restored, not changed */
	uint32_t written;
};

static uint32_t scan_function(const struct lp_clobber_ctx *ctx, const uint8_t *code, size_t size,
			      uintptr_t addr, bool replacement, int depth);

/* What a call (or a jump out of the function) to @target changes. */
static uint32_t call_clobbers(const struct scan *s, uintptr_t target)
{
	const uint8_t *code;
	size_t size;

	if (s->ctx->callee && s->depth < MAX_DEPTH &&
	    s->ctx->callee(target, &code, &size, s->ctx->arg) == 0)
		return scan_function(s->ctx, code, size, target, s->replacement, s->depth + 1);
	/* Unknown code: the compiler assumed the ABI's whole set too. */
	return LP_CLOBBER_ALL & ~s->saved;
}

static void note_write(struct scan *s, uint32_t bit)
{
	if (!(s->saved & bit))
		s->written |= bit;
}

static void scan_insn(struct scan *s, const struct lp_insn *in, uintptr_t lo, uintptr_t hi)
{
	ZydisMnemonic m = in->zi.mnemonic;
	const ZydisDecodedOperand *rel = lp_insn_rel_imm(in);

	if (m == ZYDIS_MNEMONIC_PUSH && in->ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER) {
		uint32_t bit = reg_bit(in->ops[0].reg.value);

		if (!(s->written & bit))
			s->saved |= bit;
		return;
	}
	for (unsigned i = 0; i < in->zi.operand_count; i++) {
		const ZydisDecodedOperand *op = &in->ops[i];

		if (op->type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    (op->actions & ZYDIS_OPERAND_ACTION_MASK_WRITE))
			note_write(s, reg_bit(op->reg.value));
	}
	if (m == ZYDIS_MNEMONIC_SYSCALL)
		note_write(s, reg_bit(ZYDIS_REGISTER_RAX)); /* the kernel's answer */
	if (m == ZYDIS_MNEMONIC_CALL) {
		uint32_t all =
		    rel ? call_clobbers(s, lp_insn_target(in, rel)) : LP_CLOBBER_ALL & ~s->saved;

		/* Vector registers a callee changes are not counted: see lp_arch.h. */
		s->written |= s->replacement ? all & LP_CLOBBER_GPRS : all;
	} else if (m == ZYDIS_MNEMONIC_JMP) {
		if (rel) {
			uintptr_t t = lp_insn_target(in, rel);

			if (t < lo || t >= hi) /* a tail call */
				s->written |= call_clobbers(s, t);
		} else if (s->replacement) {
			/* A jump table or a tail call: from above, the latter. */
			s->written |= LP_CLOBBER_GPRS & ~s->saved;
		}
	}
}

static uint32_t scan_function(const struct lp_clobber_ctx *ctx, const uint8_t *code, size_t size,
			      uintptr_t addr, bool replacement, int depth)
{
	struct scan s = {.ctx = ctx, .replacement = replacement, .depth = depth};
	struct lp_insn in;

	for (size_t off = 0; off < size; off += in.zi.length) {
		if (lp_insn_decode(code + off, size - off, addr + off, &in) != LP_DECODE_OK) {
			/* Padding or data: from above, anything; from below, what was seen. */
			if (replacement)
				s.written |= LP_CLOBBER_ALL & ~s.saved;
			break;
		}
		scan_insn(&s, &in, addr, addr + size);
	}
	return s.written;
}

uint32_t lp_arch_clobbers(const struct lp_clobber_ctx *ctx, const uint8_t *code, size_t size,
			  uintptr_t addr, bool replacement)
{
	if (!size)
		return replacement ? LP_CLOBBER_ALL : 0;
	return scan_function(ctx, code, size, addr, replacement, 0);
}

void lp_arch_clobber_names(uint32_t mask, char *buf, size_t len)
{
	static const char *const gprs[] = {"rax", "rcx", "rdx", "rsi", "rdi",
					   "r8",  "r9",	 "r10", "r11"};
	size_t used = 0;

	buf[0] = '\0';
	for (unsigned bit = 0; bit < 25 && used < len; bit++) {
		int n;

		if (!(mask & (1u << bit)))
			continue;
		if (bit < XMM_FIRST)
			n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", gprs[bit]);
		else
			n = snprintf(buf + used, len - used, "%sxmm%u", used ? ", " : "",
				     bit - XMM_FIRST);
		if (n < 0)
			return;
		used += (size_t)n;
	}
}
