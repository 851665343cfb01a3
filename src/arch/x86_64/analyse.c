// SPDX-License-Identifier: MIT
/*
 * Finding a function's patch site and the whole instructions a 5-byte jump
 * there displaces, and refusing functions where that would not be safe.
 */
#include "lp_arch.h"
#include "insn.h"

#include <stdio.h>
#include <string.h>

#define ENDBR64_SIZE 4
#define INT3_BYTE    0xcc

enum lp_decode_status lp_insn_decode(const uint8_t *code, size_t len, uintptr_t addr,
				     struct lp_insn *in)
{
	ZydisDecoder dec;
	ZyanStatus st;

	if (!len)
		return LP_DECODE_TRUNCATED;
	if (ZYAN_FAILED(ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64)))
		return LP_DECODE_INVALID;
	st = ZydisDecoderDecodeFull(&dec, code, len, &in->zi, in->ops);
	if (st == ZYDIS_STATUS_NO_MORE_DATA)
		return LP_DECODE_TRUNCATED;
	if (ZYAN_FAILED(st))
		return LP_DECODE_INVALID;
	in->addr = addr;
	return LP_DECODE_OK;
}

const ZydisDecodedOperand *lp_insn_rel_imm(const struct lp_insn *in)
{
	for (unsigned int i = 0; i < in->zi.operand_count; i++) {
		const ZydisDecodedOperand *op = &in->ops[i];

		if (op->type == ZYDIS_OPERAND_TYPE_IMMEDIATE && op->imm.is_relative)
			return op;
	}
	return NULL;
}

const ZydisDecodedOperand *lp_insn_rip_mem(const struct lp_insn *in)
{
	for (unsigned int i = 0; i < in->zi.operand_count; i++) {
		const ZydisDecodedOperand *op = &in->ops[i];

		if (op->type == ZYDIS_OPERAND_TYPE_MEMORY && op->mem.base == ZYDIS_REGISTER_RIP)
			return op;
	}
	return NULL;
}

uintptr_t lp_insn_target(const struct lp_insn *in, const ZydisDecodedOperand *op)
{
	ZyanU64 target = 0;

	ZydisCalcAbsoluteAddress(&in->zi, op, in->addr, &target);
	return (uintptr_t)target;
}

int lp_insn_jcc_cc(const struct lp_insn *in)
{
	static const ZydisMnemonic jcc[16] = {
	    ZYDIS_MNEMONIC_JO, ZYDIS_MNEMONIC_JNO, ZYDIS_MNEMONIC_JB,  ZYDIS_MNEMONIC_JNB,
	    ZYDIS_MNEMONIC_JZ, ZYDIS_MNEMONIC_JNZ, ZYDIS_MNEMONIC_JBE, ZYDIS_MNEMONIC_JNBE,
	    ZYDIS_MNEMONIC_JS, ZYDIS_MNEMONIC_JNS, ZYDIS_MNEMONIC_JP,  ZYDIS_MNEMONIC_JNP,
	    ZYDIS_MNEMONIC_JL, ZYDIS_MNEMONIC_JNL, ZYDIS_MNEMONIC_JLE, ZYDIS_MNEMONIC_JNLE,
	};

	for (int cc = 0; cc < 16; cc++)
		if (in->zi.mnemonic == jcc[cc])
			return cc;
	return -1;
}

static bool has_endbr64(const uint8_t *code, size_t size)
{
	static const uint8_t endbr64[ENDBR64_SIZE] = {0xf3, 0x0f, 0x1e, 0xfa};

	return size >= ENDBR64_SIZE && !memcmp(code, endbr64, ENDBR64_SIZE);
}

/* Instructions that cannot run from a copy, or whose copy changes meaning. */
static bool is_unsupported(ZydisMnemonic m)
{
	switch (m) {
	case ZYDIS_MNEMONIC_SYSCALL:
	case ZYDIS_MNEMONIC_SYSENTER:
	case ZYDIS_MNEMONIC_SYSEXIT:
	case ZYDIS_MNEMONIC_SYSRET:
	case ZYDIS_MNEMONIC_INT:
	case ZYDIS_MNEMONIC_INT1:
	case ZYDIS_MNEMONIC_INT3:
	case ZYDIS_MNEMONIC_INTO:
	case ZYDIS_MNEMONIC_UD0:
	case ZYDIS_MNEMONIC_UD1:
	case ZYDIS_MNEMONIC_UD2:
	case ZYDIS_MNEMONIC_LOOP:
	case ZYDIS_MNEMONIC_LOOPE:
	case ZYDIS_MNEMONIC_LOOPNE:
	case ZYDIS_MNEMONIC_JCXZ:
	case ZYDIS_MNEMONIC_JECXZ:
	case ZYDIS_MNEMONIC_JRCXZ:
		return true;
	default:
		return false;
	}
}

static bool reads_or_writes_rip(const struct lp_insn *in)
{
	for (unsigned int i = 0; i < in->zi.operand_count; i++) {
		const ZydisDecodedOperand *op = &in->ops[i];

		if (op->type != ZYDIS_OPERAND_TYPE_REGISTER)
			continue;
		if (op->reg.value == ZYDIS_REGISTER_RIP || op->reg.value == ZYDIS_REGISTER_EIP ||
		    op->reg.value == ZYDIS_REGISTER_IP)
			return true;
	}
	return false;
}

/*
 * Whether a displaced instruction still works when run from the trampoline,
 * once relocate fixes up its RIP-relative operand or relative branch.
 * A ret or jmp is fine: it leaves, and what follows it is never reached.
 */
static int check_displaced(const struct lp_insn *in, size_t off, char *err, size_t errlen)
{
	ZydisMnemonic m = in->zi.mnemonic;
	const char *name = ZydisMnemonicGetString(m);

	if (m == ZYDIS_MNEMONIC_CALL) {
		lp_set_err(err, errlen, "call at +0x%zx in the displaced bytes", off);
		return -1;
	}
	if (is_unsupported(m))
		goto unsupported;
	if (m == ZYDIS_MNEMONIC_JMP || m == ZYDIS_MNEMONIC_RET || lp_insn_jcc_cc(in) >= 0)
		return 0;
	if (reads_or_writes_rip(in))
		goto unsupported;
	/* Relative in any other way than through a RIP-relative operand (xbegin). */
	if ((in->zi.attributes & ZYDIS_ATTRIB_IS_RELATIVE) && !lp_insn_rip_mem(in))
		goto unsupported;
	return 0;

unsupported:
	lp_set_err(err, errlen, "unsupported instruction %s at +0x%zx", name ? name : "?", off);
	return -1;
}

/* The state of analysing one function. */
struct analysis {
	const uint8_t *code;
	size_t size;
	uintptr_t addr;
	size_t site_off; /* of the site, from addr */
	struct lp_prologue *p;
	char *err;
	size_t errlen;
};

static void reset_displaced(struct analysis *a)
{
	a->p->len = 0;
	a->p->ninsns = 0;
	a->p->padding = false;
}

/*
 * Decode the next displaced instruction, at site + p->len.  Returns 0, or -1
 * with a reason in a->err.
 */
static int decode_displaced(struct analysis *a, struct lp_insn *in)
{
	size_t off = a->site_off + a->p->len;
	enum lp_decode_status st = LP_DECODE_TRUNCATED;

	if (off < a->size)
		st = lp_insn_decode(a->code + off, a->size - off, a->addr + off, in);
	if (st == LP_DECODE_TRUNCATED) {
		lp_set_err(a->err, a->errlen, "function too short: %zu bytes, need %d at +%zu",
			   a->size, LP_JMP_SIZE, a->site_off);
		return -1;
	}
	if (st == LP_DECODE_INVALID) {
		lp_set_err(a->err, a->errlen, "cannot decode instruction at +0x%zx", off);
		return -1;
	}
	return 0;
}

static void add_displaced(struct analysis *a, const struct lp_insn *in)
{
	a->p->insn_off[a->p->ninsns++] = (uint8_t)a->p->len;
	a->p->len += in->zi.length;
}

/*
 * Take nop instructions only, until they cover a jump: patchable padding
 * that needs no relocation.  Returns whether that worked; any failure is
 * left for take_insns() to report.
 */
static bool take_nops(struct analysis *a)
{
	struct lp_insn in;

	while (a->p->len < LP_JMP_SIZE) {
		if (decode_displaced(a, &in) || in.zi.mnemonic != ZYDIS_MNEMONIC_NOP) {
			reset_displaced(a);
			return false;
		}
		add_displaced(a, &in);
	}
	a->p->padding = true;
	return true;
}

/* Take whole instructions until they cover a jump, refusing what cannot move. */
static int take_insns(struct analysis *a)
{
	struct lp_insn in;

	while (a->p->len < LP_JMP_SIZE) {
		if (decode_displaced(a, &in))
			return -1;
		if (check_displaced(&in, a->site_off + a->p->len, a->err, a->errlen))
			return -1;
		add_displaced(a, &in);
	}
	return 0;
}

/*
 * Decode the whole function linearly and refuse a relative branch to inside
 * the displaced bytes: after patching it would land in the middle of the
 * jump.  A branch to the site itself is fine, that is the function's start.
 */
static int scan_body(const struct analysis *a)
{
	uintptr_t lo = a->p->site, hi = a->p->site + a->p->len;
	struct lp_insn in;
	size_t off;

	for (off = 0; off < a->size; off += in.zi.length) {
		const ZydisDecodedOperand *rel;
		uintptr_t t;

		if (lp_insn_decode(a->code + off, a->size - off, a->addr + off, &in) !=
		    LP_DECODE_OK) {
			lp_set_err(a->err, a->errlen, "cannot decode instruction at +0x%zx", off);
			return -1;
		}
		rel = lp_insn_rel_imm(&in);
		if (!rel)
			continue;
		t = lp_insn_target(&in, rel);
		if (t > lo && t < hi) {
			lp_set_err(a->err, a->errlen,
				   "branch at +0x%zx into the displaced bytes (+0x%zx)", off,
				   (size_t)(t - a->addr));
			return -1;
		}
	}
	return 0;
}

int lp_arch_analyse(const uint8_t *code, size_t size, uintptr_t addr, struct lp_prologue *out,
		    char *err, size_t errlen)
{
	struct analysis a = {
	    .code = code,
	    .size = size,
	    .addr = addr,
	    .p = out,
	    .err = err,
	    .errlen = errlen,
	};

	memset(out, 0, sizeof(*out));
	if (!size) {
		lp_set_err(err, errlen, "unknown function size");
		return -1;
	}
	if (has_endbr64(code, size))
		a.site_off = ENDBR64_SIZE;
	out->func = addr;
	out->site = addr + a.site_off;
	if (!take_nops(&a) && take_insns(&a))
		return -1;
	memcpy(out->orig, code + a.site_off, out->len);
	return scan_body(&a);
}

bool lp_arch_is_padding(const uint8_t *code, size_t len, uintptr_t addr)
{
	struct lp_insn in;

	for (size_t off = 0; off < len; off += in.zi.length) {
		if (code[off] == INT3_BYTE) {
			in.zi.length = 1;
			continue;
		}
		if (lp_insn_decode(code + off, len - off, addr + off, &in) != LP_DECODE_OK ||
		    in.zi.mnemonic != ZYDIS_MNEMONIC_NOP)
			return false;
	}
	return true;
}
