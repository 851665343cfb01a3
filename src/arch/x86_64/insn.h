/* SPDX-License-Identifier: MIT */
/*
 * Private helpers of the x86-64 backend: decoding one instruction with Zydis,
 * classifying it, and appending encoded bytes to a bounded buffer.
 */
#ifndef LP_ARCH_INSN_H
#define LP_ARCH_INSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <Zydis/Zydis.h>

#include "common/err.h"

/* One decoded instruction with its operands and where it runs. */
struct lp_insn {
	ZydisDecodedInstruction zi;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	uintptr_t addr;
};

/* Result of lp_insn_decode(). */
enum lp_decode_status {
	LP_DECODE_OK,
	LP_DECODE_TRUNCATED, /* the bytes end inside the instruction */
	LP_DECODE_INVALID,
};

/* Decode the instruction at @code (at most @len bytes) running at @addr. */
enum lp_decode_status lp_insn_decode(const uint8_t *code, size_t len, uintptr_t addr,
				     struct lp_insn *in);

/* The relative immediate of a branch (jmp/jcc/call/loop/jrcxz), or NULL. */
const ZydisDecodedOperand *lp_insn_rel_imm(const struct lp_insn *in);

/* The RIP-relative memory operand, or NULL. */
const ZydisDecodedOperand *lp_insn_rip_mem(const struct lp_insn *in);

/* Absolute address an operand of @in refers to (branch target, memory). */
uintptr_t lp_insn_target(const struct lp_insn *in, const ZydisDecodedOperand *op);

/* The condition code (low nibble of 0x70 + cc) of a jcc, or -1. */
int lp_insn_jcc_cc(const struct lp_insn *in);

/* Whether @to - @from fits a signed 32-bit displacement. */
static inline bool lp_fits_rel32(uintptr_t from, uintptr_t to)
{
	int64_t d = (int64_t)(to - from);

	return d >= INT32_MIN && d <= INT32_MAX;
}

/*
 * Appends bytes to a bounded buffer; an overflow is remembered and reported
 * once at the end instead of after every write.
 */
struct lp_emit {
	uint8_t *buf;
	size_t size;
	size_t pos;
	bool overflow;
};

static inline void lp_emit_bytes(struct lp_emit *e, const void *p, size_t n)
{
	if (e->overflow || n > e->size - e->pos) {
		e->overflow = true;
		return;
	}
	memcpy(e->buf + e->pos, p, n);
	e->pos += n;
}

static inline void lp_emit_u8(struct lp_emit *e, uint8_t v)
{
	lp_emit_bytes(e, &v, 1);
}

/* Little-endian, as the CPU reads displacements and immediates. */
static inline void lp_emit_u32(struct lp_emit *e, uint32_t v)
{
	uint8_t b[4] = {v, v >> 8, v >> 16, v >> 24};

	lp_emit_bytes(e, b, sizeof(b));
}

static inline void lp_emit_u64(struct lp_emit *e, uint64_t v)
{
	lp_emit_u32(e, (uint32_t)v);
	lp_emit_u32(e, (uint32_t)(v >> 32));
}

static inline void lp_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

#endif /* LP_ARCH_INSN_H */
